/**
 * Frame kinds and heads of the extended protocol (docs/PROTOCOL.md §7-11).
 * A head is a small CBOR array whose first element is the kind; the
 * payload, when the kind has one, travels separately after it.
 *
 *     CALL    [1, id, method, opts?]   payload: params      client -> server
 *     NOTIFY  [2, method]              payload: params      client -> server
 *     CANCEL  [3, id]                  -                    either: "stop" for call id
 *     RESULT  [4, id]                  payload: result      server -> client
 *     ERROR   [5, id, code, message]   payload: data?       either (id 0: the connection)
 *     ITEM    [6, id]                  payload: item        either: one stream item
 *     END     [7, id]                  -                    either: stream finished
 *     CREDIT  [8, id, n]               -                    either: n more items may be sent
 *     EVENT   [9, name, dropped?, alias?]  payload: event   server -> client
 *
 * Both ends decode heads here and build them here (the fixed-shape heads
 * of every call, result and stream item by hand, in fast-heads.ts): there is
 * one ERROR head (clipped, so no peer must refuse it), one CREDIT range, one
 * id range.
 */
import { MAX_ERROR_TEXT, MAX_TIMER_MS } from '../constants.js';
import { IpcborError } from '../errors.js';
import type { Codec } from '../codec/cbor.js';
import { encodeExtended, type FrameParts } from '../frame/encoder.js';
import { encodeCallHeader, encodeKindIdHeader, parseCommonHead } from './fast-heads.js';

export const Kind = {
  Call: 1,
  Notify: 2,
  Cancel: 3,
  Result: 4,
  Error: 5,
  Item: 6,
  End: 7,
  Credit: 8,
  Event: 9,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** The base-framed request that opens the extended protocol. */
export const HELLO_METHOD = '$ipcbor.hello';
/** The reserved methods (docs/PROTOCOL.md §12): introspection and event subscriptions. */
export const DESCRIBE_METHOD = '$ipcbor.describe';
export const SUBSCRIBE_METHOD = '$ipcbor.subscribe';
export const UNSUBSCRIBE_METHOD = '$ipcbor.unsubscribe';

/** Largest call id, and largest CREDIT grant: ids and grants are u32 on the wire. */
export const MAX_ID = 0xffffffff;

export interface CallOptions {
  /**
   * Milliseconds the server may spend before it stops the handler.
   * Undefined: no deadline (absent, or longer than a timer can wait).
   */
  timeout?: number;
  /** The params are a stream the client sends as ITEM frames. */
  stream?: boolean;
}

/** A decoded head, checked for shape. */
export type Head =
  | { kind: typeof Kind.Call; id: number; method: string; opts: CallOptions }
  | { kind: typeof Kind.Notify; method: string }
  | { kind: typeof Kind.Cancel | typeof Kind.Result | typeof Kind.Item | typeof Kind.End; id: number }
  | { kind: typeof Kind.Error; id: number; code: string; message: string }
  | { kind: typeof Kind.Credit; id: number; n: number }
  | { kind: typeof Kind.Event; name: string; dropped: number; alias: string | undefined };

const bad = (why: string) => new IpcborError('IPCBOR_ERR_BAD_FRAME', `bad frame head: ${why}`);

function id(v: unknown, zeroOk = false): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (zeroOk ? 0 : 1) || v > MAX_ID) throw bad('id must be an integer from 1 to 2^32-1');
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} must be text`);
  return v;
}

/**
 * A call's `timeout` option: a non-negative integer or float of ms. A value
 * beyond what a timer can wait (2^31-1 ms, or a 64-bit integer that decodes
 * as bigint) is no deadline, as docs/PROTOCOL.md §8 says.
 */
function timeoutOption(v: unknown): number | undefined {
  if (typeof v === 'bigint') {
    if (v < 0n) throw bad('timeout must be a non-negative number');
    return undefined;
  }
  if (typeof v !== 'number' || !(v >= 0)) throw bad('timeout must be a non-negative number');
  return v > MAX_TIMER_MS ? undefined : v;
}

export function decodeHead(codec: Codec, bytes: Uint8Array): Head {
  const fast = parseCommonHead(bytes);
  if (fast) return fast;
  const h = codec.decode(bytes);
  if (!Array.isArray(h) || h.length === 0) throw bad('expected a non-empty array');
  switch (h[0]) {
    case Kind.Call: {
      const o = h[3];
      if (o !== undefined && o !== null && (typeof o !== 'object' || Array.isArray(o) || o instanceof Uint8Array)) throw bad('call options must be a map');
      const opts: CallOptions = {};
      if (o) {
        // Unknown option keys are ignored: a later version may add some.
        const { timeout, stream } = o as Record<string, unknown>;
        if (timeout !== undefined) {
          const t = timeoutOption(timeout);
          if (t !== undefined) opts.timeout = t;
        }
        if (stream === true) opts.stream = true;
      }
      return { kind: Kind.Call, id: id(h[1]), method: text(h[2], 'method'), opts };
    }
    case Kind.Notify:
      return { kind: Kind.Notify, method: text(h[1], 'method') };
    case Kind.Cancel:
    case Kind.Result:
    case Kind.Item:
    case Kind.End:
      return { kind: h[0], id: id(h[1]) };
    case Kind.Error:
      return { kind: Kind.Error, id: id(h[1], true), code: text(h[2], 'code'), message: text(h[3], 'message') };
    case Kind.Credit: {
      const n = h[2];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_ID) throw bad('credit must be an integer from 1 to 2^32-1');
      return { kind: Kind.Credit, id: id(h[1]), n };
    }
    case Kind.Event: {
      const dropped = h[2] ?? 0;
      if (typeof dropped !== 'number' || !Number.isInteger(dropped) || dropped < 0) throw bad('dropped must be a non-negative integer');
      const alias = h[3] === undefined ? undefined : text(h[3], 'event alias');
      return { kind: Kind.Event, name: text(h[1], 'event name'), dropped, alias };
    }
    default:
      throw bad(`unknown frame kind ${String(h[0])}`);
  }
}

/** Cut text to at most `max` characters. */
export function clip(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/**
 * An ERROR frame. Code and message are clipped, so the head stays far under
 * the 64 KiB head limit whoever sends it: no peer ever has to drop a whole
 * connection over one long message. `data`, if any, is the encoded payload.
 */
export function errorFrame(codec: Codec, id: number, code: string, message: string, data?: Uint8Array): FrameParts {
  return encodeExtended(codec.encode([Kind.Error, id, clip(code, 256), clip(message)]), data);
}

/** CALL `id` of `method` (its UTF-8 bytes given too, for the fast head used when there are no options). */
export function callFrame(codec: Codec, id: number, methodBytes: Uint8Array, method: string, opts: CallOptions | undefined, payload: Uint8Array): FrameParts {
  return opts ? encodeExtended(codec.encode([Kind.Call, id, method, opts]), payload) : [encodeCallHeader(id, methodBytes, payload.length), payload];
}

/** NOTIFY of `method`. */
export function notifyFrame(codec: Codec, method: string, payload: Uint8Array): FrameParts {
  return encodeExtended(codec.encode([Kind.Notify, method]), payload);
}

/** EVENT `name`; `dropped` (events lost before it) and `alias` (a default service's bare name) when there are any. */
export function eventFrame(codec: Codec, name: string, dropped: number, alias: string | undefined, payload: Uint8Array): FrameParts {
  const head = alias !== undefined ? [Kind.Event, name, dropped, alias] : dropped > 0 ? [Kind.Event, name, dropped] : [Kind.Event, name];
  return encodeExtended(codec.encode(head), payload);
}

/** CANCEL of call `id`. */
export function cancelHead(id: number): readonly unknown[] {
  return [Kind.Cancel, id];
}

/** END of the stream of call `id`. */
export function endHead(id: number): readonly unknown[] {
  return [Kind.End, id];
}

/** CREDIT: `n` more items may be sent on the stream of call `id`. */
export function creditHead(id: number, n: number): readonly unknown[] {
  return [Kind.Credit, id, n];
}
