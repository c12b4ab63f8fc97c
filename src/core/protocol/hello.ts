/**
 * The hello (docs/PROTOCOL.md §6): a base-framed request `$ipcbor.hello`
 * that a base-framing peer answers with an error and an ipcbor peer with its
 * limits. Both ends check the limits here, the same way.
 */
import { PROTOCOL_VERSION } from '../constants.js';
import { IpcborError, RemoteError } from '../errors.js';
import { MAX_ID } from './heads.js';

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

/** Frame lengths are u32: a larger announced limit means "no limit" and is read as this. */
const MAX_FRAME_FIELD = 0xffffffff;

/**
 * A positive limit, as a peer in any language may announce it: an integer,
 * or a 64-bit "no limit" such as 2^64-1 (which decodes as bigint). Values
 * above `max` are read as `max`. Anything else is refused.
 */
export function limitField(v: unknown, max: number): number | undefined {
  if (typeof v === 'bigint') return v > 0n ? max : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) return undefined;
  return Math.min(v, max);
}

function requireLimit(v: unknown, max: number, what: string, who: string): number {
  const n = limitField(v, max);
  if (n === undefined) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `${who}: ${what} must be a positive integer`);
  return n;
}

/** The offer a client sends. */
export function helloOffer(maxFrameBytes: number, window: number): HelloRequest {
  return { version: PROTOCOL_VERSION, maxFrameBytes, window };
}

/** A server reads a client's offer (unknown keys are ignored: a later version may add some). */
export function readHelloRequest(value: unknown): HelloRequest {
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'hello: expected a map {version, maxFrameBytes, window}');
  const version = requireLimit(v.version, MAX_ID, 'version', 'hello');
  return {
    version: Math.min(version, PROTOCOL_VERSION),
    maxFrameBytes: requireLimit(v.maxFrameBytes, MAX_FRAME_FIELD, 'maxFrameBytes', 'hello'),
    window: requireLimit(v.window, MAX_ID, 'window', 'hello'),
  };
}

/** A client reads the server's answer (unknown keys are ignored). */
export function readHelloResponse(value: unknown): HelloResponse {
  const v = value as Record<string, unknown> | null;
  const who = 'the server answered the hello with an unusable offer';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `${who}: not a map`);
  const refused = v.refused as Record<string, unknown> | undefined;
  if (typeof refused === 'object' && refused !== null && typeof refused.code === 'string' && typeof refused.message === 'string') {
    // The server took the connection only to say why it will not serve it.
    throw new RemoteError(refused.code, refused.message);
  }
  const version = requireLimit(v.version, MAX_ID, 'version', who);
  if (version > PROTOCOL_VERSION) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `${who}: version ${version} was not offered`);
  const answer: HelloResponse = {
    version,
    maxFrameBytes: requireLimit(v.maxFrameBytes, MAX_FRAME_FIELD, 'maxFrameBytes', who),
    window: requireLimit(v.window, MAX_ID, 'window', who),
    server: typeof v.server === 'string' ? v.server : '',
  };
  if (v.maxInflight !== undefined) answer.maxInflight = requireLimit(v.maxInflight, MAX_ID, 'maxInflight', who);
  return answer;
}
