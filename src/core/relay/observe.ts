/**
 * What a relay tells an observer (RelayCoreOptions.observe): each relayed
 * connection's open and the close of each of its two ends, and every frame
 * it moves between them, both ways. Data only: the relay hands over the
 * bytes as they were moved (payloads are never decoded for it; an observer
 * may decode them itself) and the head it read anyway. The observer is
 * called synchronously, on the relay's path: what it keeps, it copies.
 * Without an observer the relay does nothing of this (one test per frame).
 */
import type { Head } from '../protocol/heads.js';
import type { ConnectionInfo } from '../transport.js';

/** A relayed connection, as the client's listener saw it (its id is unique in the process). */
export type RelayedConnection = Omit<ConnectionInfo, 'protocol'>;

/** The client's connection was linked to its own connection to the service. */
export interface RelayOpenEvent {
  /** What happened: a connection was linked. */
  readonly type: 'open';
  /** The client's connection. */
  readonly connection: RelayedConnection;
  /** When, in ms, on the clock of `performance.now()`. */
  readonly time: number;
}

/** One end of a relayed connection closed (each end once; the other end is then ended by the relay). */
export interface RelayCloseEvent {
  /** What happened: an end closed. */
  readonly type: 'close';
  /** The client's connection. */
  readonly connection: RelayedConnection;
  /** When, in ms, on the clock of `performance.now()`. */
  readonly time: number;
  /** Which end: the client's connection or the service's. */
  readonly end: 'client' | 'service';
  /** Why it closed (IPCBOR_ERR_CONNECTION_CLOSED when the peer simply closed). */
  readonly reason: {
    /** The error code (`IPCBOR_ERR_…`). */
    readonly code: string;
    /** What went wrong, in words. */
    readonly message: string;
  };
}

/** A frame the relay moved on, or (`byRelay`) one it answered with itself. */
export interface RelayFrameEvent {
  /** What happened: a frame moved. */
  readonly type: 'frame';
  /** The client's connection. */
  readonly connection: RelayedConnection;
  /** When, in ms, on the clock of `performance.now()`. */
  readonly time: number;
  /** Where the frame goes: toward the service (the client sent it) or toward the client. */
  readonly direction: 'to-service' | 'to-client';
  /** `base`: the length-prefixed base framing (requests and responses, the hello too); `extended`: a frame with a head. */
  readonly framing: 'base' | 'extended';
  /** The relay wrote this frame itself, in place of moving one (a hello it could not pass on, a call refused while it shuts down). */
  readonly byRelay?: true;
  /** A base-framing request: its method (`$ipcbor.hello` for the hello). */
  readonly method?: string;
  /** A base-framing response: its ret (0: the body is CBOR; otherwise UTF-8 text). */
  readonly ret?: number;
  /** An extended frame: its head, as the relay read it (`kind`, and `id`, `method`, `name`, `code`, `message` or `n` as the kind has them). */
  readonly head?: Readonly<Head>;
  /** An extended frame: the head's bytes. */
  readonly headBytes?: Uint8Array;
  /** The payload (extended), params (request) or body (response), as sent on. A view: copy what is kept. */
  readonly payload: Uint8Array;
  /** The frame's bytes on the wire, lengths included. */
  readonly size: number;
}

/** Anything a relay tells its observer. */
export type RelayEvent = RelayOpenEvent | RelayCloseEvent | RelayFrameEvent;

/** Called by the relay, synchronously, with every event (RelayCoreOptions.observe, RelayOptions.observe). */
export type RelayObserver = (event: RelayEvent) => void;
