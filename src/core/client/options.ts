/**
 * The options of one client connection, and their defaults filled in
 * once (every use site reads the resolved value).
 */
import { CLOSE_LINGER_MS, DEFAULT_EVENT_QUEUE, DEFAULT_EVENT_QUEUE_BYTES, DEFAULT_MAX_CONNECTION_BYTES, DEFAULT_MAX_FRAME_BYTES, DEFAULT_STREAM_WINDOW } from '../constants.js';
import { wireCodec, type Codec } from '../codec/cbor.js';
import { peerConfig, type PeerConfig } from '../peer/peer.js';
import { Kind } from '../protocol/heads.js';
import type { EventLimits } from './subscription.js';

export interface ClientConnectionOptions {
  codec?: Codec;
  /** Largest answer accepted, in bytes (default 16 MiB); announced to the server. */
  maxFrameBytes?: number;
  /** Default timeout of every call, in ms (default: none). */
  timeout?: number;
  /** Stream items accepted per stream before granting more (default 64). */
  window?: number;
  /** Events buffered per subscription for a slow async-iterator reader before the oldest are dropped (default 1024). */
  eventQueue?: number;
  /** Bytes of events buffered per subscription before the oldest are dropped (default 4 MiB). */
  eventQueueBytes?: number;
  /**
   * What a subscription's full queue (`eventQueue`, `eventQueueBytes`) does
   * when its reader falls behind. `drop` (default): its oldest event is
   * dropped. `pause`: the client stops reading the connection until the
   * reader takes an event; the server then queues events for the
   * connection, dropping the oldest past its own bound (counted in
   * `dropped`), and answers to calls on it wait too. For a connection that
   * only reads events, at the pace of a slow consumer.
   */
  eventOverflow?: 'drop' | 'pause';
  /** Bytes of stream items received and not yet read before the client stops reading the connection (default 32 MiB). */
  maxConnectionBytes?: number;
  /** ms the server has to finish a frame once its first byte arrived (default 0: no limit). */
  frameTimeout?: number;
  /**
   * Close the connection after this many ms in which no frame arrived and
   * no call was waiting (default 0: never). With `reconnect`, the client
   * then connects again: a way to notice a connection whose peer vanished
   * without a FIN, which nothing else on an idle connection would.
   */
  idleTimeout?: number;
}

export interface ResolvedClientOptions {
  readonly codec: Codec;
  readonly maxFrameBytes: number;
  readonly timeout: number | undefined;
  readonly window: number;
  readonly eventOverflow: 'drop' | 'pause';
  readonly maxConnectionBytes: number;
  readonly frameTimeout: number;
  readonly idleTimeout: number;
  readonly events: EventLimits;
  /** The peer's config, made once for every connection of the client. */
  readonly config: PeerConfig;
}

export function clientConnectionOptions(o: ClientConnectionOptions, timeout: number | undefined): ResolvedClientOptions {
  const eventOverflow = o.eventOverflow ?? 'drop';
  const codec = o.codec ?? wireCodec;
  const maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const window = o.window ?? DEFAULT_STREAM_WINDOW;
  const frameTimeout = o.frameTimeout ?? 0;
  const idleTimeout = o.idleTimeout ?? 0;
  return {
    codec,
    maxFrameBytes,
    timeout,
    window,
    eventOverflow,
    maxConnectionBytes: o.maxConnectionBytes ?? DEFAULT_MAX_CONNECTION_BYTES,
    frameTimeout,
    idleTimeout,
    events: { maxItems: o.eventQueue ?? DEFAULT_EVENT_QUEUE, maxBytes: o.eventQueueBytes ?? DEFAULT_EVENT_QUEUE_BYTES, overflow: eventOverflow },
    // A client's writes are its caller's doing: not guarded (see PeerOptions.guardWrites).
    config: peerConfig({ codec, maxFrameBytes, receives: 'response', takes: [Kind.Result, Kind.Event], other: 'server', window, guardWrites: false, frameTimeout, idleTimeout, linger: CLOSE_LINGER_MS }),
  };
}
