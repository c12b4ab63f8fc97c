/**
 * `ipcbor monitor --listen ADDRESS --to SERVICE`: a relay that prints every
 * frame it moves, both ways, with its payload in CBOR diagnostic notation
 * (or one JSON object a frame with --json). What a client and a service
 * say to each other, as `busctl monitor` shows D-Bus traffic.
 *
 * The output never waits in memory without bound: while stdout is backed
 * up, lines are dropped and then counted in one line. A closed stdout
 * (EPIPE: `ipcbor monitor ... | head`) ends the command quietly.
 */
import { diagnose } from '../core/codec/diagnostic.js';
import { HELLO_METHOD, Kind } from '../core/protocol/heads.js';
import type { RelayEvent, RelayFrameEvent } from '../core/relay/observe.js';
import { createRelay, type RelayOptions } from '../node/relay.js';
import { option, tlsFromOptions, type Command, type Io } from './command.js';
import { escapeControls } from './escape.js';

/** Longest name, code or message printed from a frame (a peer chooses them; payloads have --max-bytes). */
const MAX_FIELD = 256;
const cut = (text: string): string => (text.length > MAX_FIELD ? `${text.slice(0, MAX_FIELD)}… (${text.length} characters)` : text);
import { count, listenSecurity, relayOptionSpecs } from './relay.js';

const KIND_NAMES: Record<number, string> = {
  [Kind.Call]: 'CALL',
  [Kind.Notify]: 'NOTIFY',
  [Kind.Cancel]: 'CANCEL',
  [Kind.Result]: 'RESULT',
  [Kind.Error]: 'ERROR',
  [Kind.Item]: 'ITEM',
  [Kind.End]: 'END',
  [Kind.Credit]: 'CREDIT',
  [Kind.Event]: 'EVENT',
};

/** Calls, and base-framing requests, remembered per connection for the method and the time of their answers. */
const MAX_REMEMBERED = 4096;

interface Pending {
  readonly method: string;
  readonly time: number;
}

/** What the monitor keeps of one relayed connection. */
interface Watched {
  readonly opened: number;
  readonly remote: string;
  /** Extended calls in flight, by id. */
  readonly calls: Map<number, Pending>;
  /** Base-framing requests not yet answered, in order (answers come in request order). */
  readonly requests: Pending[];
  closes: number;
}

/** One printed frame: what both the text and the JSON line are made of. */
interface Line {
  t: number;
  conn: number;
  dir: 'to-service' | 'to-client';
  framing: 'base' | 'extended';
  kind: string;
  byRelay?: true;
  id?: number;
  method?: string;
  name?: string;
  code?: string;
  message?: string;
  n?: number;
  dropped?: number;
  alias?: string;
  ret?: number;
  size: number;
  payloadSize: number;
  /** ms since the call's CALL, or the request's REQUEST. */
  elapsed?: number;
  /** The payload in diagnostic notation; for a base-framing error, its text. */
  payload?: string;
  /** Why the payload could not be read as CBOR (it is then shown as hex). */
  payloadError?: string;
}

const ms = (x: number) => Math.round(x * 1000) / 1000;

export class Monitor {
  private readonly connections = new Map<number, Watched>();
  private dropped = 0;

  constructor(
    private readonly io: Pick<Io, 'out' | 'blocked' | 'drained'>,
    private readonly json: boolean,
    private readonly maxOutput: number,
  ) {}

  readonly observe = (event: RelayEvent): void => {
    const id = event.connection.id;
    if (event.type === 'open') {
      const remote = event.connection.remote ?? event.connection.transport;
      this.connections.set(id, { opened: event.time, remote, calls: new Map(), requests: [], closes: 0 });
      return this.print(this.json ? { event: 'open', t: 0, conn: id, transport: event.connection.transport, remote } : `+0.000ms #${id} open ${escapeControls(remote)}`);
    }
    const c = this.connections.get(id);
    if (c === undefined) return;
    const t = ms(event.time - c.opened);
    if (event.type === 'close') {
      if (++c.closes === 2) this.connections.delete(id);
      return this.print(
        this.json
          ? { event: 'close', t, conn: id, end: event.end, code: event.reason.code, message: event.reason.message }
          : `+${t.toFixed(3)}ms #${id} close ${event.end}: ${escapeControls(cut(event.reason.code))} ${escapeControls(cut(event.reason.message))}`,
      );
    }
    const line = this.frame(event, c, t);
    this.print(this.json ? { event: 'frame', ...line } : this.text(line));
  };

  private frame(e: RelayFrameEvent, c: Watched, t: number): Line {
    const line: Line = { t, conn: e.connection.id, dir: e.direction, framing: e.framing, kind: '', size: e.size, payloadSize: e.payload.length };
    if (e.byRelay) line.byRelay = true;
    if (e.framing === 'base') {
      if (e.method !== undefined) {
        line.kind = e.method === HELLO_METHOD ? 'HELLO' : 'REQUEST';
        line.method = cut(e.method);
        if (c.requests.length < MAX_REMEMBERED) c.requests.push({ method: line.method, time: e.time });
        this.payload(line, e.payload);
      } else {
        // A response the relay wrote itself answers nothing the service was sent.
        const asked = e.byRelay ? undefined : c.requests.shift();
        line.kind = asked?.method === HELLO_METHOD ? 'HELLO' : 'RESPONSE';
        line.ret = e.ret ?? 0;
        if (asked) {
          line.method = asked.method;
          line.elapsed = ms(e.time - asked.time);
        }
        if (line.ret === 0) this.payload(line, e.payload);
        else line.payload = JSON.stringify(new TextDecoder().decode(e.payload.subarray(0, this.maxOutput)));
      }
      return line;
    }
    const h = e.head!;
    line.kind = KIND_NAMES[h.kind] ?? String(h.kind);
    switch (h.kind) {
      case Kind.Call:
        line.id = h.id;
        line.method = cut(h.method);
        if (c.calls.size < MAX_REMEMBERED) c.calls.set(h.id, { method: line.method, time: e.time });
        break;
      case Kind.Notify:
        line.method = cut(h.method);
        break;
      case Kind.Event:
        line.name = cut(h.name);
        if (h.dropped > 0) line.dropped = h.dropped;
        if (h.alias !== undefined) line.alias = cut(h.alias);
        break;
      default: {
        line.id = h.id;
        if (h.kind === Kind.Error) {
          line.code = cut(h.code);
          line.message = cut(h.message);
        } else if (h.kind === Kind.Credit) line.n = h.n;
        const call = c.calls.get(h.id);
        if (call !== undefined) {
          line.method = call.method;
          if (e.direction === 'to-client' && h.kind !== Kind.Credit && h.kind !== Kind.Cancel) line.elapsed = ms(e.time - call.time);
          // The call is over once the service sent its RESULT, ERROR or END.
          if (e.direction === 'to-client' && (h.kind === Kind.Result || h.kind === Kind.Error || h.kind === Kind.End)) c.calls.delete(h.id);
        }
      }
    }
    if (e.payload.length > 0) this.payload(line, e.payload);
    return line;
  }

  /** The payload in diagnostic notation, or as marked hex when it is not CBOR. */
  private payload(line: Line, payload: Uint8Array): void {
    if (payload.length === 0) return;
    try {
      line.payload = diagnose(payload, { maxOutput: this.maxOutput });
    } catch (err) {
      line.payloadError = err instanceof Error ? err.message : String(err);
      const shown = payload.subarray(0, Math.max(1, Math.floor(this.maxOutput / 2)));
      line.payload = `h'${Buffer.from(shown.buffer, shown.byteOffset, shown.byteLength).toString('hex')}'${shown.length < payload.length ? ` /+${payload.length - shown.length} bytes/` : ''}`;
    }
  }

  private text(l: Line): string {
    const parts = [`+${l.t.toFixed(3)}ms`, `#${l.conn}`, l.dir === 'to-service' ? '->' : '<-', l.kind];
    if (l.byRelay) parts.push('(by the relay)');
    if (l.id !== undefined) parts.push(`id=${l.id}`);
    if (l.method !== undefined) parts.push(escapeControls(l.method));
    if (l.name !== undefined) parts.push(escapeControls(l.name));
    if (l.alias !== undefined) parts.push(`alias=${escapeControls(l.alias)}`);
    if (l.dropped !== undefined) parts.push(`dropped=${l.dropped}`);
    if (l.ret !== undefined) parts.push(`ret=${l.ret}`);
    if (l.n !== undefined) parts.push(`n=${l.n}`);
    if (l.code !== undefined) parts.push(`${escapeControls(l.code)}: ${JSON.stringify(l.message)}`);
    parts.push(`${l.size}B`);
    if (l.elapsed !== undefined) parts.push(`(${l.elapsed.toFixed(3)}ms)`);
    if (l.payload !== undefined) parts.push(l.payloadError !== undefined ? `${l.payload} /not CBOR: ${l.payloadError}/` : l.payload);
    return escapeControls(parts.join(' '));
  }

  /** One line, or none while stdout is backed up (counted, and said once it drains). */
  private print(line: string | object): void {
    if (this.io.blocked()) {
      if (this.dropped++ === 0) {
        void this.io.drained().then(() => {
          const n = this.dropped;
          this.dropped = 0;
          this.io.out(this.json ? JSON.stringify({ event: 'dropped', lines: n }) : `# ${n} lines dropped: the output was not read fast enough`);
        });
      }
      return;
    }
    this.io.out(typeof line === 'string' ? line : escapeControls(JSON.stringify(line), 'json'));
  }
}

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'relay to a service and print every frame both ways (CBOR diagnostic notation)',
  usage: 'ipcbor monitor --listen ADDRESS... --to SERVICE [--json] [--max-bytes N] [--cert FILE --key FILE] [OPTIONS]',
  help: `Listens on each --listen address and relays every client that connects
there to SERVICE, as 'ipcbor relay' does, printing each frame it moves on
a line of its own:

  +1.234ms #1 -> CALL id=1 echo 45B {"req": {"message": "hi", "delayMs": 0}}
  +1.912ms #1 <- RESULT id=1 echo 42B (0.678ms) {"echoed": "hi", "timerName": "t"}

the time since the connection opened, the connection, the direction (->
toward the service, <- toward the client), the kind (HELLO, REQUEST and
RESPONSE in the base framing; CALL, NOTIFY, CANCEL, RESULT, ERROR, ITEM,
END, CREDIT, EVENT in the extended protocol), the call id, the method or
event, the frame's size on the wire, for an answer the time since its call,
and the payload in CBOR diagnostic notation (RFC 8949 §8). A payload that
is not CBOR is shown as hex, marked /not CBOR: .../. Connections opening
and closing get a line too. The listen addresses are printed on stderr.

Options:
  --json          one JSON object per line instead: {"event": "frame", "t",
                  "conn", "dir", "framing", "kind", "id", "method", "size",
                  "elapsed", "payload", ...}; "open" and "close" events too
  --max-bytes N   print at most N characters of each payload (default 1024):
                  long byte strings, texts, arrays and maps are cut, marked
                  with how much was left out

Lines are never held back without bound: while stdout is not read fast
enough they are dropped, and a line says how many.

Listeners (as for 'ipcbor relay'): --cert FILE --key FILE [--client-ca FILE]
for tls:, --insecure for plaintext on a network address, --max-frame-bytes N.
The service over TLS: --to-ca FILE, --to-cert FILE, --to-key FILE,
--to-servername NAME.`,
  options: {
    ...relayOptionSpecs,
    json: { type: 'boolean' },
    'max-bytes': { type: 'string' },
  },
  async run(positionals, values, io) {
    const listen = values.listen as string[] | undefined;
    const to = option(values, 'to');
    if (positionals.length > 0 || listen === undefined || listen.length === 0 || to === undefined) return io.usage();
    const monitor = new Monitor(io, values.json === true, count(values, 'max-bytes', 16) ?? 1024);
    const options: RelayOptions = {
      listen,
      to,
      ...listenSecurity(values),
      observe: monitor.observe,
      onError: (err, c) => io.error(`monitor: ${c.remote ?? c.transport}: ${err.code}: ${err.message}`),
    };
    const maxFrameBytes = count(values, 'max-frame-bytes', 1);
    if (maxFrameBytes !== undefined) options.maxFrameBytes = maxFrameBytes;
    const toTls = tlsFromOptions(values, 'to-').tls;
    if (toTls) options.toTls = toTls;
    if (io.signal.aborted) return 130;
    const relay = await createRelay(options);
    for (const a of relay.addresses) io.error(`monitoring ${a} -> ${relay.to}`);
    // stdout closed by its reader (EPIPE), or failing: stop at once, quietly.
    let closedOut = false;
    const stopped = new Promise<void>((resolve) => {
      io.signal.addEventListener('abort', () => resolve(), { once: true });
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') io.error(`monitor: stdout: ${err.message}`);
        closedOut = true;
        resolve();
      });
    });
    await stopped;
    if (closedOut) {
      relay.destroy();
      return 0;
    }
    await relay.close();
    return 130;
  },
};
