/**
 * Pure frame encoders. Each returns the header and the body as separate
 * parts, so a large body is written to the socket as it is, never copied
 * into a joined buffer.
 *
 * Base framing (network byte order):
 *
 *     request : +----------------+--------------+-----------------+-----------------+
 *               | u32 method_len | method UTF-8 | u32 payload_len | payload (CBOR)  |
 *               +----------------+--------------+-----------------+-----------------+
 *     response: +---------+--------------+--------------------------------------+
 *               | i32 ret | u32 body_len | body: CBOR (ret 0) or UTF-8 text     |
 *               +---------+--------------+--------------------------------------+
 *
 * Extended framing (after negotiation, both directions): the request
 * layout again, with a small CBOR head in place of the method name.
 *
 *               +--------------+--------------------+-----------------+-----------------+
 *               | u32 head_len | head: CBOR array   | u32 payload_len | payload (CBOR)  |
 *               +--------------+--------------------+-----------------+-----------------+
 */

const utf8 = new TextEncoder();

export type FrameParts = readonly [header: Uint8Array, body: Uint8Array];

const EMPTY = new Uint8Array(0);

/** Header of a base-framing request (method length, method, payload length), or of an extended frame (head in place of the method). */
export function encodeRequestHeader(method: Uint8Array, payloadLength: number): Uint8Array {
  const m = method.length;
  const header = new Uint8Array(8 + m);
  putU32(header, 0, m);
  header.set(method, 4);
  putU32(header, 4 + m, payloadLength);
  return header;
}

/** Big-endian u32 (also writes an i32's two's complement). Shifts, not a DataView: this is per frame. */
function putU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

/** A base-framing request frame. `method` may be pre-encoded UTF-8 (hot path) or a string. */
export function encodeRequest(method: string | Uint8Array, payload: Uint8Array): FrameParts {
  const m = typeof method === 'string' ? utf8.encode(method) : method;
  return [encodeRequestHeader(m, payload.length), payload];
}

/** A base-framing response frame. */
export function encodeResponse(ret: number, body: Uint8Array): FrameParts {
  const header = new Uint8Array(8);
  putU32(header, 0, ret);
  putU32(header, 4, body.length);
  return [header, body];
}

/** A base-framing error response: ret 1 and the UTF-8 text (an empty text is sent as "unknown error"). */
export function encodeErrorResponse(message: string): FrameParts {
  return encodeResponse(1, message === '' ? utf8.encode('unknown error') : utf8.encode(message));
}

/** An extended frame: the encoded head and the payload (empty when the kind has none). */
export function encodeExtended(head: Uint8Array, payload: Uint8Array = EMPTY): FrameParts {
  return [encodeRequestHeader(head, payload.length), payload];
}

/** Join parts into one buffer: for tests and tiny frames only. */
export function concatParts(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  if (total === 0) return EMPTY;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
