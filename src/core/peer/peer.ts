/**
 * One end of a connection, the same code on both sides, composed of:
 *
 * - the framing (frame/decoder.ts in, frame/encoder.ts out);
 * - the phase (phase.ts): one value, moved only by `enterExtended`,
 *   `beginClosing` and the close;
 * - flow control and the byte budget (flow.ts, budget.ts);
 * - the timers (timers.ts);
 * - the stream table (stream-table.ts);
 * - the control frames both ends send: CREDIT, CANCEL, ERROR;
 * - a role (role.ts) for what only one side does: running calls, matching
 *   answers, events, the base framing's order.
 *
 * Sides differ by options (which frames they take, whether writes are
 * guarded, how long to linger), never by branches here. No I/O: bytes come
 * in through the TransportSink methods and leave through the Transport.
 */
import { DEFAULT_STREAM_WINDOW } from '../constants.js';
import type { Codec } from '../codec/cbor.js';
import { IpcborError, RemoteError, asIpcborError, messageOf } from '../errors.js';
import { FrameDecoder, type FrameSink } from '../frame/decoder.js';
import { encodeExtended, type FrameParts } from '../frame/encoder.js';
import { encodeKindIdHeader } from '../protocol/fast-heads.js';
import { Kind, decodeHead, errorFrame } from '../protocol/heads.js';
import type { Disposable, Transport, TransportSink } from '../transport.js';
import { disposable } from '../transport.js';
import { decodedBytes, type ConnectionBudget } from './budget.js';
import { Flow } from './flow.js';
import { phaseOf, stageAfter, type Phase } from './phase.js';
import type { PeerRole } from './role.js';
import { StreamTable } from './stream-table.js';
import { PeerTimers } from './timers.js';
import { afterIo, WriteTurns } from './turns.js';

export interface PeerOptions {
  codec: Codec;
  /** Largest payload accepted. */
  maxFrameBytes: number;
  /** Longest method name accepted in a base-framing request. */
  maxMethodBytes?: number;
  /** What the other end sends in the base framing, until a hello: requests (it is a client) or responses (a server). */
  receives: 'request' | 'response';
  /**
   * Extended frame kinds the role takes: CALL and NOTIFY (a server), RESULT
   * and EVENT (a client). ITEM, END, CREDIT, CANCEL and ERROR are the
   * peer's unless the role takes them too (a relay takes every kind). Any
   * other kind breaks the protocol.
   */
  takes: readonly number[];
  /** What the other end is, for error text (`a client may not send …`). */
  other: string;
  /** Stream items this end accepts per stream before it grants more. */
  window: number;
  /**
   * Guard what is written: bytes written and not yet sent count against
   * the budget, a peer that reads none of them while the server is short
   * of room is cut, and reading stops while writes are backed up (a client
   * that does not read its answers may not send more calls). A server
   * guards its writes; a client does not (its writes are its caller's
   * doing, and both ends waiting on each other would deadlock).
   */
  guardWrites: boolean;
  /** ms a peer has to finish a frame once its first byte arrived (0: no limit). */
  frameTimeout: number;
  /** ms without a frame, and with nothing in flight, before the connection is ended (0: never). */
  idleTimeout: number;
  /** ms to wait, once our side is ended, for the other end to close its side before the transport is cut. */
  linger: number;
  /** Run `f` after pending I/O (Node: setImmediate): where a connection yields after a burst of frames. */
  defer?: (f: () => void) => void;
  /** Write turns shared with other connections (a server's); default: this connection's own. */
  turns?: WriteTurns;
}

/**
 * PeerOptions made ready once, and shared by every connection made with
 * them (a server's): a connection holds one reference, not a copy of each.
 */
export interface PeerConfig extends Readonly<Omit<PeerOptions, 'takes' | 'defer'>> {
  /** The kinds taken, as a bit per kind. */
  readonly takenKinds: number;
  readonly defer: (f: () => void) => void;
}

export function peerConfig(options: PeerOptions): PeerConfig {
  let takenKinds = 0;
  for (const kind of options.takes) takenKinds |= 1 << kind;
  // Every field named, in one order: every config has the same shape, so
  // the code reading them sees one kind of object (a spread of the caller's
  // options would give each caller's key order a shape of its own).
  return Object.freeze({
    codec: options.codec,
    maxFrameBytes: options.maxFrameBytes,
    maxMethodBytes: options.maxMethodBytes,
    receives: options.receives,
    other: options.other,
    window: options.window,
    guardWrites: options.guardWrites,
    frameTimeout: options.frameTimeout,
    idleTimeout: options.idleTimeout,
    linger: options.linger,
    turns: options.turns,
    takenKinds,
    defer: options.defer ?? afterIo,
  });
}

/** How a connection stops taking work: `drain` lets what runs finish; `end` ends our side now. */
export type ClosingKind = 'drain' | 'end';

export class Peer implements TransportSink, FrameSink {
  /** Resolves once the connection has closed, however it closed: IPCBOR_ERR_CONNECTION_CLOSED, with the reason as its cause. */
  readonly closed: Promise<IpcborError>;
  /** Largest payload the other end accepts (from its hello). */
  peerMaxFrame = Infinity;
  /** Items the other end accepts per stream before granting more (from its hello). */
  peerWindow = DEFAULT_STREAM_WINDOW;

  readonly transport: Transport;
  readonly config: PeerConfig;
  /** The config's codec, kept here: it is read for every frame. */
  readonly codec: Codec;
  /** An idle timeout is set: each frame tells the timers it arrived. */
  private readonly idleWatched: boolean;
  /** The config's kinds taken (read for every frame). */
  private readonly takenKinds: number;
  readonly decoder: FrameDecoder;
  readonly budget: ConnectionBudget;
  readonly role: PeerRole;
  readonly flow: Flow;
  readonly timers: PeerTimers;

  private current: Phase = phaseOf('base', 'open');
  /** Made on first use: most connections never stream. */
  private streamTable: StreamTable | undefined;
  private resolveClosed!: (err: IpcborError) => void;
  private closeReason: IpcborError | undefined;
  private clean = false;

  /** `config`: see peerConfig (a server makes it once for all its connections). */
  constructor(transport: Transport, role: PeerRole, config: PeerConfig, budget: ConnectionBudget) {
    this.transport = transport;
    this.role = role;
    this.config = config;
    this.codec = config.codec;
    this.idleWatched = config.idleTimeout > 0;
    this.takenKinds = config.takenKinds;
    this.budget = budget;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.flow = new Flow(this, config.turns ?? new WriteTurns(config.defer));
    // The peer is the decoder's sink itself: no closures per connection.
    this.decoder = new FrameDecoder(
      config.receives,
      this,
      config.maxMethodBytes === undefined ? { maxFrameBytes: config.maxFrameBytes } : { maxFrameBytes: config.maxFrameBytes, maxMethodBytes: config.maxMethodBytes },
    );
    this.timers = new PeerTimers(this);
  }

  /** Items this end accepts per stream before it grants more. */
  get window(): number {
    return this.config.window;
  }

  /** The streams of this connection, both ways. */
  get streams(): StreamTable {
    return (this.streamTable ??= new StreamTable(this));
  }

  /**
   * Call `id` is over, here: its streams end (see StreamTable.endCall).
   * Most calls never streamed: for them this makes nothing.
   */
  endStreams(id: number, err: IpcborError | undefined, drop = false): void {
    this.streamTable?.endCall(id, err, drop);
  }

  // ---- the phase -----------------------------------------------------------------

  /** The framing spoken and the stage of the connection's life. */
  get phase(): Phase {
    return this.current;
  }

  /** `base` until a hello succeeds, then `extended`. */
  get protocol(): 'base' | 'extended' {
    return this.current.framing;
  }

  /**
   * The hello succeeded: everything after it is extended framing. `limits`
   * is what the other end announced it accepts.
   */
  enterExtended(limits: { maxFrameBytes: number; window: number }): void {
    if (this.current.framing === 'extended' || this.current.stage !== 'open') throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'the extended protocol can only be entered once, on an open connection');
    this.peerMaxFrame = limits.maxFrameBytes;
    this.peerWindow = limits.window;
    this.decoder.mode = 'extended';
    this.current = phaseOf('extended', 'open');
  }

  /**
   * Stop taking work. `drain`: no new calls; what runs finishes, and the
   * role ends the connection when it is quiet. `end`: our side is ended
   * now (what was written is flushed), and the transport is cut after the
   * linger if the other end does not close its side in turn.
   */
  beginClosing(kind: ClosingKind): void {
    const now = this.current;
    if (now.stage === 'closed') return;
    this.current = phaseOf(now.framing, stageAfter(now.stage, kind === 'drain' ? 'draining' : 'ending'));
    if (kind === 'end' && now.stage !== 'ending') {
      this.transport.end();
      this.timers.lingerThenCut(this.config.linger);
    }
    this.flow.update();
  }

  /** Why the connection closed (undefined while open). */
  get reason(): IpcborError | undefined {
    return this.closeReason;
  }

  /**
   * The connection closed cleanly: its transport closed with no error, by
   * either end, between two frames (nothing of a frame half read), and
   * nobody closed it for a fault (a protocol error, a timeout, a cut).
   */
  get closedCleanly(): boolean {
    return this.clean;
  }

  /** Is nothing in flight (the role's view)? */
  get quiet(): boolean {
    return this.role.quiet;
  }

  /** Call `listener` once the connection has closed. */
  onceClosed(listener: (reason: IpcborError) => void): Disposable {
    let live = true;
    void this.closed.then((r) => live && listener(r));
    return disposable(() => (live = false));
  }

  /** Close at once: what is not written is dropped. After the close, a transport still ending is cut. */
  destroy(cause?: IpcborError): void {
    // Settled first: a transport that reports its close at once must not take the cause's place.
    // Destroyed is never a clean close, with a cause or without.
    if (this.current.stage !== 'closed') this.settle(cause, false);
    this.transport.destroy();
  }

  /** Cut the connection for what the other end did (a frame or a read not finished in time), and say so. */
  cut(err: IpcborError): void {
    this.report(err);
    this.destroy(err);
  }

  /**
   * The other end broke the protocol or sent what cannot be read: tell it
   * why (extended protocol: ERROR on id 0; the base framing: the role may
   * answer what it owes first), then close. Every call and stream ends
   * with the error.
   */
  fail(err: IpcborError): void {
    if (this.current.stage === 'closed') return;
    if (this.current.framing === 'base') {
      if (this.role.brokeBaseFraming?.(err)) return;
      this.report(err);
      this.destroy(err);
      return;
    }
    this.report(err);
    if (err instanceof RemoteError) return this.destroy(err);
    this.write(errorFrame(this.codec, 0, err.code, err.message));
    // Everything settles now; the transport's close follows, cut after the
    // linger if the other end never closes its side.
    this.beginClosing('end');
    this.settle(err);
  }

  /** Tell the role's error listener. */
  report(err: IpcborError): void {
    this.role.report?.(err);
  }

  /** Read nothing more: drop what the decoder holds (a broken or timed-out frame), and its charge. */
  dropInput(): void {
    this.decoder.discard();
    this.flow.syncIn();
  }

  /** Whether reading is held back (the role's own reasons). */
  holdsReading(): boolean {
    return this.role.holdsReading?.() ?? false;
  }

  /** Room was made: the role may send what it held back. */
  roomMade(): void {
    this.role.roomMade?.();
  }

  /** Hand the frames the decoder held on; false when one of them failed the connection. */
  releaseDecoder(): boolean {
    try {
      this.decoder.release();
      return true;
    } catch (err) {
      this.fail(asIpcborError(err));
      return false;
    }
  }

  // ---- FrameSink: one guarded call per received frame -------------------------

  /** a base-framing request arrived */
  request(method: string, payload: Uint8Array): void {
    if (this.current.stage === 'closed') return;
    if (this.idleWatched) this.timers.frameArrived();
    try {
      if (this.role.request === undefined) throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'unexpected request');
      this.role.request(method, payload);
    } catch (err) {
      return this.fail(asIpcborError(err));
    }
    this.flow.frameDone();
  }

  /** a base-framing response arrived */
  response(ret: number, body: Uint8Array): void {
    if (this.current.stage === 'closed') return;
    if (this.idleWatched) this.timers.frameArrived();
    try {
      if (this.role.response === undefined) throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'unexpected response');
      this.role.response(ret, body);
    } catch (err) {
      return this.fail(asIpcborError(err));
    }
    this.flow.frameDone();
  }

  /** an extended frame arrived */
  extended(headBytes: Uint8Array, payload: Uint8Array): void {
    if (this.current.stage === 'closed') return;
    if (this.idleWatched) this.timers.frameArrived();
    try {
      this.onExtended(headBytes, payload);
    } catch (err) {
      return this.fail(asIpcborError(err));
    }
    this.flow.frameDone();
  }

  private onExtended(headBytes: Uint8Array, payload: Uint8Array): void {
    const head = decodeHead(this.codec, headBytes);
    // A kind the role takes is the role's, control kinds included: a relay
    // moves every frame on as it came, and the peer keeps no stream of it.
    if ((this.takenKinds & (1 << head.kind)) !== 0) return this.role.frame(head, payload, headBytes);
    switch (head.kind) {
      case Kind.Item:
      case Kind.End:
        return this.streams.received(head.kind, head.id, payload);
      case Kind.Credit:
        return this.streamTable?.credit(head.id, head.n);
      case Kind.Cancel:
        this.streamTable?.stopOutbound(head.id);
        return this.role.cancelled?.(head.id);
      case Kind.Error: {
        let data: unknown;
        if (payload.length > 0) {
          try {
            data = this.codec.decode(payload);
          } catch {
            data = undefined;
          }
        }
        const err = new RemoteError(head.code, head.message, { data });
        // The other end gave up on the connection and is closing it.
        if (head.id === 0) return this.cut(err);
        // The role settles its call first (a client names the method in the
        // error its reader gets); a stream still open ends with the error.
        this.role.callFailed?.(head.id, err);
        this.streamTable?.closeInbound(head.id, err);
        return;
      }
      default:
        throw new IpcborError('IPCBOR_ERR_PROTOCOL', `a ${this.config.other} may not send frame kind ${head.kind}`);
    }
  }

  // ---- TransportSink -------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.current.stage === 'closed') return;
    try {
      // An empty chunk: the transport's own count of bytes held changed (see Transport.buffered).
      if (chunk.length > 0) this.decoder.push(chunk);
    } catch (err) {
      this.fail(asIpcborError(err));
      return;
    }
    this.flow.syncIn();
  }

  onDrain(): void {
    const unsent = this.flow.unsent;
    if (!this.flow.drained()) {
      // Bytes left though writes were not backed up: what waited for the connection's own room (held-back events) may go.
      if (this.flow.unsent < unsent) this.role.roomMade?.();
      return;
    }
    this.role.drained?.();
    this.flow.update();
  }

  /** The transport closed: settle, and there is nothing left for a linger to cut. */
  onClose(cause?: unknown): void {
    this.timers.transportClosed();
    this.settle(cause);
  }

  /** The connection is over, however it ended: settle everything once. */
  private settle(cause?: unknown, clean = true): void {
    if (this.closeReason) return;
    this.clean = clean && cause === undefined && this.decoder.idle;
    const reason =
      cause instanceof IpcborError
        ? cause
        : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', cause === undefined ? 'the connection closed' : `the connection closed: ${messageOf(cause)}`, cause === undefined ? {} : { cause });
    this.closeReason = reason;
    this.current = phaseOf(this.current.framing, 'closed');
    this.timers.closed();
    // What a frame left half in is read by nobody now.
    this.decoder.discard();
    this.streamTable?.closeAll(new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection closed', { cause: reason }));
    this.flow.closed();
    this.role.connectionClosed(reason);
    this.budget.close();
    this.resolveClosed(
      reason.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? reason : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the connection closed: ${reason.message}`, { cause: reason }),
    );
  }

  // ---- writing -------------------------------------------------------------------

  write(parts: FrameParts): void {
    if (this.current.stage === 'closed') return;
    this.flow.wrote(this.transport.write(parts));
  }

  /** Whether the transport refuses more for now (wait for the role's `drained`). */
  get writeBlocked(): boolean {
    return this.flow.writeBlocked;
  }

  writeHead(head: readonly unknown[]): void {
    if (this.current.stage === 'closed') return;
    this.write(encodeExtended(this.codec.encode(head)));
  }

  /**
   * RESULT or ITEM with its value. A value that cannot be encoded, or is
   * over the other end's limit, throws (the caller turns it into an ERROR).
   */
  writeValue(kind: typeof Kind.Result | typeof Kind.Item, id: number, value: unknown, method: string): void {
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(value);
    } catch (err) {
      throw new IpcborError('IPCBOR_ERR_ENCODE', `${kind === Kind.Item ? 'stream item' : 'result'} could not be encoded: ${messageOf(err)}`, { method, cause: err });
    }
    this.checkOutgoing(bytes.length, kind === Kind.Item ? 'stream item' : 'result', method);
    this.write([encodeKindIdHeader(kind, id, bytes.length), bytes]);
  }

  /** Refuse to send what the other end said it will not take. */
  checkOutgoing(length: number, what: string, method: string): void {
    if (length > this.peerMaxFrame) {
      throw new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `${what} of ${length} bytes is over the peer's limit of ${this.peerMaxFrame} bytes`, { method });
    }
  }

  /** ERROR for call `id` (0: the connection), with the error's data if it can be sent. */
  writeError(id: number, err: IpcborError): void {
    let data: Uint8Array | undefined;
    if (err.data !== undefined) {
      try {
        data = this.codec.encode(err.data);
        if (data.length > this.peerMaxFrame) data = undefined;
      } catch {
        data = undefined;
      }
    }
    this.write(errorFrame(this.codec, id, String(err.code), err.message, data));
  }

  // ---- decoding ------------------------------------------------------------------

  /**
   * Decode a payload. One that fills its whole buffer is the framing's own
   * copy (a frame that arrived in pieces, or a chunk that was just this
   * payload): nothing else uses that memory, so large byte strings in it may
   * stay where they are instead of being copied again.
   */
  decodePayload(payload: Uint8Array): unknown {
    const owned = payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength;
    return owned && this.codec.decodeOwned ? this.codec.decodeOwned(payload) : this.codec.decode(payload);
  }

  /** Decode a payload; returns the value and what holding it costs (wire bytes plus decoded items). */
  decodeCosted(payload: Uint8Array): { value: unknown; cost: number } {
    const value = this.decodePayload(payload);
    return { value, cost: payload.length + decodedBytes(this.codec) };
  }
}
