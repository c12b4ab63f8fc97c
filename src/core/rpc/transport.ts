/**
 * What a session needs from a byte stream. The Node socket adapter
 * (src/node/socket-transport.ts) is one; a WebSocket or an in-memory pipe
 * can be another. The session calls these; the adapter calls the session's
 * `receive`, `drained` and `closed` in return.
 */
import type { FrameParts } from '../frame/encoder.js';

export interface Transport {
  /** Queue a frame for writing. Returns false once the peer is not keeping up: wait for `drained`. */
  write(parts: FrameParts): boolean;
  /** Stop delivering received bytes (backpressure); `resume` starts again. */
  pause(): void;
  resume(): void;
  /** Flush what was written, then close. */
  end(): void;
  /** Close at once, dropping what is not yet written. */
  destroy(): void;
}

/** Facts about the peer, handed to handlers in `ctx.connection`. */
export interface ConnectionInfo {
  /** Unique per server, from 1. */
  readonly id: number;
  /** `unix`, `tcp`, `tls`, `ws`, … */
  readonly transport: string;
  /** The peer's address where the transport has one (`127.0.0.1:51234`). */
  readonly remote?: string;
  /** Which framing the connection speaks: the seed framing, or the negotiated extended protocol. */
  readonly protocol: 'seed' | 'extended';
}
