/**
 * Frame kinds and heads of the extended protocol (docs/PROTOCOL.md, "Extended
 * protocol"). A head is a small CBOR array whose first element is the kind;
 * the payload, when the kind has one, travels separately after it.
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
 */
import { PROTOCOL_VERSION } from '../constants.js';
import { IpcborError } from '../errors.js';
import type { Codec } from '../codec/cbor.js';
import { parseCommonHead } from './heads.js';

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

/** The seed-framed request that opens the extended protocol. */
export const HELLO_METHOD = '$ipcbor.hello';
/** The reserved methods (docs/PROTOCOL.md §12): introspection and event subscriptions. */
export const DESCRIBE_METHOD = '$ipcbor.describe';
export const SUBSCRIBE_METHOD = '$ipcbor.subscribe';
export const UNSUBSCRIBE_METHOD = '$ipcbor.unsubscribe';

export interface HelloRequest {
  /** Highest extended protocol version the client speaks. */
  version: number;
  /** Largest payload the client accepts. */
  maxFrameBytes: number;
  /** Stream items the client accepts before it grants more credit. */
  window: number;
}

export interface HelloResponse {
  /** The version both sides now speak (at most the client's). */
  version: number;
  maxFrameBytes: number;
  window: number;
  /** Calls the client may have in flight on this connection; more are refused with IPCBOR_ERR_OVERLOADED. */
  maxInflight?: number;
  /** Free text naming the server implementation. */
  server: string;
}

export interface CallOptions {
  /** Milliseconds the server may spend before it stops the handler. */
  timeout?: number;
  /** The params are a stream the client sends as ITEM frames. */
  stream?: boolean;
}

export function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** Check a hello request; returns the version to speak. */
export function acceptHello(value: unknown): HelloRequest {
  const v = value as Partial<HelloRequest> | null;
  if (typeof v !== 'object' || v === null || !isPositiveInt(v.version) || !isPositiveInt(v.maxFrameBytes) || !isPositiveInt(v.window)) {
    throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'hello needs {version, maxFrameBytes, window} as positive integers');
  }
  return { version: Math.min(v.version, PROTOCOL_VERSION), maxFrameBytes: v.maxFrameBytes, window: v.window };
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
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (zeroOk ? 0 : 1) || v > 0xffffffff) throw bad('id must be an integer from 1 to 2^32-1');
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} must be text`);
  return v;
}

export function decodeHead(codec: Codec, bytes: Uint8Array): Head {
  const fast = parseCommonHead(bytes);
  if (fast) return fast;
  const h = codec.decode(bytes);
  if (!Array.isArray(h) || h.length === 0) throw bad('expected a non-empty array');
  switch (h[0]) {
    case Kind.Call: {
      const o = h[3];
      if (o !== undefined && o !== null && (typeof o !== 'object' || Array.isArray(o))) throw bad('call options must be a map');
      const opts: CallOptions = {};
      if (o) {
        const { timeout, stream } = o as Record<string, unknown>;
        if (timeout !== undefined) {
          if (typeof timeout !== 'number' || !(timeout >= 0)) throw bad('timeout must be a non-negative number');
          opts.timeout = timeout;
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
      if (!isPositiveInt(h[2])) throw bad('credit must be a positive integer');
      return { kind: Kind.Credit, id: id(h[1]), n: h[2] };
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
