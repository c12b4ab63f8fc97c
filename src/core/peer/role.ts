/**
 * What a side adds to the peer: a role object given to the Peer at
 * construction. The peer owns the framing, the phase, flow control, the
 * timers, control frames (CREDIT, CANCEL, ERROR) and the stream table; it
 * hands the role the frames only a side handles and asks it the few
 * things only the side knows. Every hook but `frame`, `quiet` and `closed`
 * is optional: a role that has nothing to say leaves it out.
 *
 * A server connection (server/connection.ts) and a client connection
 * (client/connection.ts) are roles; a relay that moves frames without
 * decoding their payloads would be a third.
 */
import type { IpcborError, RemoteError } from '../errors.js';
import type { Head } from '../protocol/heads.js';

export interface PeerRole {
  /** A request in the base framing arrived (a server's peer sends them). */
  request?(method: string, payload: Uint8Array): void;
  /** A response in the base framing arrived (a client's peer sends them). */
  response?(ret: number, body: Uint8Array): void;
  /**
   * An extended frame of a kind in the peer's `takes` option (CALL and
   * NOTIFY; RESULT and EVENT; every kind for a relay), its payload not
   * decoded, and its head as it arrived.
   */
  frame(head: Head, payload: Uint8Array, headBytes: Uint8Array): void;
  /** The other end cancelled call `id` (its stream from here, if any, was stopped). */
  cancelled?(id: number): void;
  /** The other end reported an error for call `id` (before the stream it sent, if any, fails with it). */
  callFailed?(id: number, err: RemoteError): void;
  /** ITEM or END for an id with no stream: open one with `peer.streams.open(id)` and return true (a result stream), or not. */
  streamArrived?(id: number): boolean;
  /** Nothing in flight: for the idle timer and a graceful close. */
  readonly quiet: boolean;
  /** Reasons of its own not to read now (answers owed in the base framing, a full subscription queue). */
  holdsReading?(): boolean;
  /** The transport took what it held after refusing more: send what was held back. */
  drained?(): void;
  /** Bytes were released here or on the server: send what was held back for want of room. */
  roomMade?(): void;
  /** Something the other end did wrong that it will not hear of by itself. */
  report?(err: IpcborError): void;
  /**
   * The other end broke the base framing. Return true to close the
   * connection yourself (a server answers what it owes first); otherwise
   * the peer closes it at once.
   */
  brokeBaseFraming?(err: IpcborError): boolean;
  /** The connection closed: settle everything. Called once. */
  connectionClosed(reason: IpcborError): void;
}
