#!/usr/bin/python3
"""A Python peer for ipcbor, written from docs/PROTOCOL.md alone.

Usage:
  python_client.py ADDRESS base
  python_client.py ADDRESS extended
  python_client.py ADDRESS stream METHOD [WINDOW]

ADDRESS is unix:/path or tcp:host:port (tcp:[::1]:9099 for IPv6).
Prints JSON lines on stdout; exits non-zero with a message on stderr on any
protocol failure. Needs only the standard library and cbor2.
"""
import io
import json
import select
import socket
import struct
import sys
import time

import cbor2

NO_PAYLOAD = object()  # marks payload_len = 0 (distinct from CBOR null)
CALL, NOTIFY, CANCEL, RESULT, ERROR, ITEM, END, CREDIT, EVENT = range(1, 10)
MAX_HEAD = 64 * 1024
MAX_FRAME = 16 * 1024 * 1024


class ProtocolError(Exception):
    pass


def connect(address, timeout=10.0):
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address[5:])
    elif address.startswith("tcp:"):
        host, _, port = address[4:].rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)))
    else:
        raise ProtocolError(f"bad address {address!r}")
    sock.settimeout(timeout)
    return sock


def decode_one(data):
    """Exactly one CBOR item filling `data` (trailing bytes are refused, §5)."""
    fp = io.BytesIO(data)
    item = cbor2.CBORDecoder(fp).decode()
    if fp.tell() != len(data):
        raise ProtocolError(f"{len(data) - fp.tell()} trailing bytes after CBOR item")
    return item


def encode_payload(payload):
    return b"" if payload is NO_PAYLOAD else cbor2.dumps(payload)


def u32(n):
    return struct.pack(">I", n)


# ---- frame encoders -------------------------------------------------------

def base_request(method, params):
    m, p = method.encode("utf-8"), encode_payload(params)
    return u32(len(m)) + m + u32(len(p)) + p


def ext_frame(head, payload=NO_PAYLOAD):
    h, p = cbor2.dumps(head), encode_payload(payload)
    return u32(len(h)) + h + u32(len(p)) + p


def call_frame(cid, method, params, opts=None):
    head = [CALL, cid, method] + ([opts] if opts is not None else [])
    return ext_frame(head, params)


def notify_frame(method, params):
    return ext_frame([NOTIFY, method], params)


def cancel_frame(cid):
    return ext_frame([CANCEL, cid])


def credit_frame(cid, n):
    return ext_frame([CREDIT, cid, n])


# ---- frame reader ---------------------------------------------------------

class FrameReader:
    """Reassembles base-framing responses and extended frames from a byte stream."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed by peer")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _u32_limited(self, limit, what):
        (n,) = struct.unpack(">I", self._need(4))
        if n > limit:
            raise ProtocolError(f"{what} of {n} bytes is over the limit of {limit}")
        return n

    def pending(self, timeout):
        """True if bytes are buffered or arrive within `timeout` seconds."""
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def base_response(self):
        """-> (ret, value): value is the decoded result (ret 0) or error text."""
        ret, n = struct.unpack(">iI", self._need(8))
        if n > MAX_FRAME:
            raise ProtocolError(f"response of {n} bytes is over the limit")
        body = self._need(n)
        if ret != 0:
            return ret, body.decode("utf-8", "replace")
        return 0, decode_one(body)

    def frame(self):
        """-> (head list, payload or NO_PAYLOAD)."""
        head = decode_one(self._need(self._u32_limited(MAX_HEAD, "head")))
        if not isinstance(head, list) or not head or not isinstance(head[0], int):
            raise ProtocolError(f"malformed head {head!r}")
        n = self._u32_limited(MAX_FRAME, "payload")
        payload = decode_one(self._need(n)) if n else NO_PAYLOAD
        if head[0] == ERROR and len(head) >= 2 and head[1] == 0:
            raise ProtocolError(f"connection error {head[2:]!r}")
        return head, payload


# ---- helpers --------------------------------------------------------------

def emit(obj):
    def default(v):
        if isinstance(v, (bytes, bytearray)):
            return v.hex()
        return repr(v)
    print(json.dumps(obj, default=default), flush=True)


def echo_params(message, delay_ms=0):
    return {"req": {"message": message, "delayMs": delay_ms}}


def base_call(sock, reader, method, params):
    sock.sendall(base_request(method, params))
    return reader.base_response()


def hello(sock, reader, window=64):
    ret, ans = base_call(sock, reader, "$ipcbor.hello",
                         {"version": 1, "maxFrameBytes": MAX_FRAME, "window": window})
    if ret != 0:
        raise ProtocolError(f"server does not speak the extended protocol: {ans!r}")
    if not isinstance(ans, dict) or not isinstance(ans.get("version"), int):
        raise ProtocolError(f"bad hello answer {ans!r}")
    if ans["version"] > 1:
        raise ProtocolError(f"server chose version {ans['version']} > offered 1")
    return ans


def wait_for(reader, cid, events=None):
    """Read frames until the RESULT/ERROR for `cid`; EVENTs go to `events`."""
    while True:
        head, payload = reader.frame()
        kind = head[0]
        if kind == EVENT:
            if events is not None:
                events.append((head, payload))
            continue
        if kind in (RESULT, ERROR) and head[1] == cid:
            return head, payload
        if kind in (RESULT, ERROR, ITEM, END):
            raise ProtocolError(f"unexpected frame {head!r} while waiting for id {cid}")
        raise ProtocolError(f"unexpected frame kind {head!r}")


def expect_result(head, payload):
    if head[0] != RESULT:
        raise ProtocolError(f"call failed: {head[2:]!r}")
    return None if payload is NO_PAYLOAD else payload


# ---- modes ----------------------------------------------------------------

def run_base(sock, reader):
    ret, v = base_call(sock, reader, "version", {})
    if ret != 0:
        raise ProtocolError(f"version failed: {v}")
    emit({"version": v})
    ret, v = base_call(sock, reader, "echo", echo_params("from python"))
    if ret != 0:
        raise ProtocolError(f"echo failed: {v}")
    emit({"echo": v})
    ret, v = base_call(sock, reader, "nope", {})
    if ret == 0:
        raise ProtocolError(f"unknown method answered ret 0: {v!r}")
    emit({"error": ret, "text": v})
    sock.sendall(b"".join(base_request("echo", echo_params(m)) for m in ("p1", "p2", "p3")))
    echoed = []
    for _ in range(3):
        ret, v = reader.base_response()
        if ret != 0:
            raise ProtocolError(f"pipelined echo failed: {v}")
        echoed.append(v["echoed"])
    emit({"pipelined": echoed})


def run_extended(sock, reader):
    emit({"hello": hello(sock, reader)})
    # 1. three concurrent calls; answers arrive as they are ready
    msgs = {1: ("a", 50), 2: ("b", 0), 3: ("c", 20)}
    sock.sendall(b"".join(call_frame(i, "echo", echo_params(m, d)) for i, (m, d) in msgs.items()))
    order = []
    while len(order) < 3:
        head, payload = reader.frame()
        if head[0] != RESULT or head[1] not in msgs or msgs[head[1]][0] in order:
            raise ProtocolError(f"unexpected frame {head!r}")
        order.append(msgs[head[1]][0])
    emit({"order": order})
    # 2. an unknown method gives an ERROR frame
    sock.sendall(call_frame(4, "nope", {}))
    head, _ = wait_for(reader, 4)
    if head[0] != ERROR:
        raise ProtocolError(f"expected ERROR for nope, got {head!r}")
    emit({"error": {"code": head[2], "message": head[3]}})
    # 3. subscribe, then trigger the event; EVENT and RESULT in either order
    sock.sendall(call_frame(5, "$ipcbor.subscribe", {"event": "on_echo_fired"}))
    expect_result(*wait_for(reader, 5))
    sock.sendall(call_frame(6, "echo", echo_params("evt")))
    events, result = [], None
    while result is None or not events:
        head, payload = reader.frame()
        if head[0] == EVENT:
            events.append((head, payload))
        elif head[1] == 6:
            result = expect_result(head, payload)
        else:
            raise ProtocolError(f"unexpected frame {head!r}")
    head, payload = events[0]
    # the subscription sees the name it subscribed by: the alias if present (§10)
    name = head[3] if len(head) >= 4 else head[1]
    emit({"event": {"name": name, "payload": payload}})
    emit({"echo": result})
    sock.sendall(call_frame(7, "$ipcbor.unsubscribe", {"event": "on_echo_fired"}))
    expect_result(*wait_for(reader, 7, events=[]))
    # 4. a server-side deadline
    sock.sendall(call_frame(8, "echo", echo_params("slow", 500), {"timeout": 10}))
    head, _ = wait_for(reader, 8, events=[])
    if head[0] != ERROR:
        raise ProtocolError(f"expected a deadline ERROR, got {head!r}")
    emit({"deadline": head[2]})
    # 5. a notification gets no answer at all
    sock.sendall(notify_frame("echo", echo_params("notified")) + call_frame(9, "version", {}))
    emit({"after_notify": expect_result(*wait_for(reader, 9, events=[]))})
    while reader.pending(0.2):  # anything after that is an answer to the NOTIFY
        head, _ = reader.frame()
        if head[0] != EVENT:
            raise ProtocolError(f"frame after NOTIFY: {head!r}")
    emit({"done": True})


def run_stream(sock, reader, method, window):
    hello(sock, reader, window)  # our window is the credit we grant up front (§11)
    half = max(1, window // 2)
    cid = 1
    sock.sendall(call_frame(cid, method, {"n": 100}))
    # granted: total credit given (window up front, then CREDITs); returned:
    # credit given back with CREDIT. Outstanding = received - returned <= window.
    items, granted, unconsumed, max_out, ended = [], window, 0, 0, False
    while not ended:
        # read whatever has arrived (a slow consumer lets the window fill up)
        batch = [reader.frame()]
        while reader.pending(0.005):
            batch.append(reader.frame())
        for head, payload in batch:
            kind = head[0]
            if kind == EVENT:
                continue
            if ended or head[1] != cid:
                raise ProtocolError(f"unexpected frame {head!r}")
            if kind == ITEM:
                items.append(None if payload is NO_PAYLOAD else payload)
                if len(items) > granted:
                    raise ProtocolError(f"got item {len(items)} with only {granted} credit granted")
                max_out = max(max_out, len(items) - (granted - window))
                unconsumed += 1
            elif kind == END:
                ended = True
            elif kind == ERROR:
                raise ProtocolError(f"stream failed: {head[2:]!r}")
            elif kind == RESULT:
                raise ProtocolError(f"{method} answered a RESULT, not a stream: {payload!r}")
            else:
                raise ProtocolError(f"unexpected frame {head!r}")
        # consume the batch, granting credit in batches of half a window
        while not ended and unconsumed >= half:
            sock.sendall(credit_frame(cid, half))
            granted += half
            unconsumed -= half
    emit({"items": items})
    emit({"max_outstanding": max_out})


def main(argv):
    if len(argv) < 3 or argv[2] not in ("base", "extended", "stream") \
            or (argv[2] == "stream" and len(argv) < 4):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        sock = connect(argv[1])
        reader = FrameReader(sock)
        with sock:
            if argv[2] == "base":
                run_base(sock, reader)
            elif argv[2] == "extended":
                run_extended(sock, reader)
            else:
                run_stream(sock, reader, argv[3], int(argv[4]) if len(argv) > 4 else 16)
    except (ProtocolError, OSError, ValueError, KeyError, TypeError,
            cbor2.CBORDecodeError) as e:
        print(f"python_client: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
