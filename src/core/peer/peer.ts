/**
 * One end of a connection, the same code on both sides: framing in and
 * out, the connection's state, back-pressure and the byte budget, the
 * frame and idle timers, and everything of the extended protocol that goes
 * both ways (stream items and credit, CANCEL of a stream, ERROR frames,
 * the connection-level ERROR). The server connection and the client
 * connection extend it with what only their side does (running calls,
 * matching answers). No I/O here: bytes come in through the TransportSink
 * methods and leave through the Transport.
 */
import { DEFAULT_STREAM_WINDOW, MAX_TIMER_MS } from '../constants.js';
import type { Codec } from '../codec/cbor.js';
import { IpcborError, RemoteError, messageOf } from '../errors.js';
import { FrameDecoder, type DecoderMode, type FrameSink } from '../frame/decoder.js';
import { encodeExtended, type FrameParts } from '../frame/encoder.js';
import { encodeKindIdHeader } from '../protocol/fast-heads.js';
import { Kind, decodeHead, errorFrame, type Head } from '../protocol/heads.js';
import type { Disposable, Transport, TransportSink } from '../transport.js';
import { disposable } from '../transport.js';
import { ConnectionBudget, decodedBytes } from './budget.js';
import { AsyncQueue } from './queue.js';
import { afterIo, WriteTurns, type TurnTaker } from './turns.js';

export interface PeerOptions {
  codec: Codec;
  /** Largest payload accepted. */
  maxFrameBytes: number;
  /** Longest seed method name accepted (server side). */
  maxMethodBytes?: number;
  /** Stream items this end accepts per stream before it grants more. */
  window: number;
  budget: ConnectionBudget;
  /** ms a peer has to finish a frame once its first byte arrived (0: no limit). */
  frameTimeout: number;
  /** ms without a frame, and with nothing in flight, before the connection is closed (0: never). */
  idleTimeout: number;
  /**
   * Which end this is. A server guards its resources against the peer:
   * what it has written and the peer has not read counts against the
   * budget, and it stops reading while its writes are backed up (a client
   * that does not read its answers may not send more calls). A client
   * counts only what the server pushes at it: its own writes are its
   * caller's doing, and both ends waiting on each other would deadlock.
   */
  side: 'server' | 'client';
  /** Run `f` after pending I/O (Node: setImmediate): where a connection yields after a burst of frames. */
  defer?: (f: () => void) => void;
  /** Turns shared with other connections (a server's); default: this connection's own. */
  turns?: WriteTurns;
}

/**
 * Frames one connection may have run in one turn of the event loop before
 * it yields: a chunk can carry thousands of tiny frames, and one peer must
 * not hold up every other for as long as they take.
 */
const FRAMES_PER_TURN = 256;

/** How long a server waits for a peer to close its side after ending its own. */
const CLOSE_LINGER_MS = 2000;

/** `open`, then `closing` (no new work, finishing what runs), then `closed`. */
export type PeerState = 'open' | 'closing' | 'closed';

/** A stream this end receives: its items wait in a queue; credit is granted as they are read. */
interface Inbound {
  readonly queue: AsyncQueue<unknown>;
  /** Items the sender may still send. */
  allowance: number;
  /** Items read since credit was last granted. */
  consumed: number;
}

/** A stream this end sends: it may send `credit` more items. */
interface Outbound {
  credit: number;
  stopped: boolean;
  wake: (() => void) | undefined;
}

const setTimer = globalThis.setTimeout;
const clearTimer = globalThis.clearTimeout;

/** The empty map every connection starts with, shared and never written to. */
const NONE: Map<number, never> = new Map<number, never>();


/** A timer that does not keep the process alive where the platform allows. */
export function backgroundTimer(f: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimer(f, Math.min(ms, MAX_TIMER_MS));
  (t as { unref?: () => void }).unref?.();
  return t;
}

export abstract class Peer implements TransportSink, FrameSink, TurnTaker {
  state: PeerState = 'open';
  /** `seed` until a hello succeeds, then `extended`. */
  protocol: 'seed' | 'extended' = 'seed';
  /** Resolves once the connection has closed, however it closed: IPCBOR_ERR_CONNECTION_CLOSED, with the reason as its cause. */
  readonly closed: Promise<IpcborError>;
  /** Largest payload the other end accepts (from its hello). */
  peerMaxFrame = Infinity;
  /** Items the other end accepts per stream before granting more (from its hello). */
  peerWindow = DEFAULT_STREAM_WINDOW;

  protected readonly transport: Transport;
  protected readonly codec: Codec;
  protected readonly decoder: FrameDecoder;
  protected readonly budget: ConnectionBudget;
  protected readonly window: number;
  private readonly options: PeerOptions;
  // Made on first use (most connections never stream): an idle
  // connection's memory is mostly what it made up front.
  private inbound: Map<number, Inbound> = NONE;
  private outbound: Map<number, Outbound> = NONE;
  private resolveClosed!: (err: IpcborError) => void;
  private closeReason: IpcborError | undefined;
  /** Complete frames are handed on (the decoder is not held). */
  private delivering = true;
  /** The transport is read. */
  private reading = true;
  /** Frames run in this turn, and whether the connection is waiting for the next turn. */
  private burst = 0;
  private turnScheduled = false;
  private yielding = false;
  private readonly defer: (f: () => void) => void;
  protected writeBlocked = false;
  /** Streams waiting for their turn to ask their source for an item (see turns.ts). */
  private writeWaiters: ((turn: number) => void)[] = [];
  private readonly turns: WriteTurns;
  /** Bytes charged for what the transport has not written yet, and for the decoder's partial frame. */
  private chargedOut = 0;
  private chargedIn = 0;
  /** Charged while the transport is paused: what it may read ahead meanwhile. */
  private chargedAhead = 0;
  private frameTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes the transport has handed on (for the send timer: did the peer read anything?). */
  private sent = 0;
  private sendTimer: ReturnType<typeof setTimeout> | undefined;
  private frameMark = 0;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private lastFrameAt = 0;
  /** Room was released (here or on the server): read again, and let waiting writers on. */
  private readonly recheck = () => {
    this.updateReading();
    this.askTurn();
    this.onRoom();
  };

  constructor(transport: Transport, mode: DecoderMode, options: PeerOptions) {
    this.transport = transport;
    this.options = options;
    this.codec = options.codec;
    this.budget = options.budget;
    this.window = options.window;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.defer = options.defer ?? afterIo;
    this.turns = options.turns ?? new WriteTurns(this.defer);
    // The peer is the decoder's sink itself: no closures per connection.
    this.decoder = new FrameDecoder(
      mode,
      this,
      options.maxMethodBytes === undefined ? { maxFrameBytes: options.maxFrameBytes } : { maxFrameBytes: options.maxFrameBytes, maxMethodBytes: options.maxMethodBytes },
    );
    if (options.idleTimeout > 0) this.armIdle(options.idleTimeout);
  }

  // ---- what each side adds --------------------------------------------------

  /** A seed request arrived (server side). */
  protected onSeedRequest(_method: string, _payload: Uint8Array): void {
    this.fail(new IpcborError('IPCBOR_ERR_PROTOCOL', 'unexpected seed request'));
  }

  /** A seed response arrived (client side). */
  protected onSeedResponse(_ret: number, _body: Uint8Array): void {
    this.fail(new IpcborError('IPCBOR_ERR_PROTOCOL', 'unexpected seed response'));
  }

  /** An extended frame that only one side handles (CALL, NOTIFY, RESULT, EVENT). */
  protected abstract onFrame(head: Head, payload: Uint8Array): void;
  /** The other end cancelled call `id` (after its outbound stream, if any, was stopped). */
  protected abstract onCancel(id: number): void;
  /** The other end reported an error for call `id` (after its inbound stream, if any, failed). */
  protected abstract onCallError(id: number, err: RemoteError): void;
  /** An ITEM or END arrived for an id with no stream yet: the side may open one (a client's result stream). */
  protected abstract inboundFor(id: number): AsyncQueue<unknown> | undefined;
  /** The connection closed: settle everything. Called once. */
  protected abstract onClosed(reason: IpcborError): void;
  /** Is nothing in flight (for the idle timer and a graceful close)? */
  protected abstract get quiet(): boolean;
  /** Extra reasons not to read now (the server's seed answers owed). */
  protected holdsReading(): boolean {
    return false;
  }
  /** The transport can take more: a side may send what it held back. */
  protected onWritable(): void {}
  /** Bytes were released here or on the server: a side may send what it held back for want of room. */
  protected onRoom(): void {}
  /** Something the other end did wrong that it will not hear of by itself. */
  protected report(_err: IpcborError): void {}

  // ---- FrameSink: one guarded call per received frame ----------------------

  /** @internal a seed request arrived */
  request(method: string, payload: Uint8Array): void {
    if (!this.entering()) return;
    try {
      this.onSeedRequest(method, payload);
    } catch (err) {
      return this.fail(asIpcborError(err));
    }
    this.leaving();
  }

  /** @internal a seed response arrived */
  response(ret: number, body: Uint8Array): void {
    if (!this.entering()) return;
    try {
      this.onSeedResponse(ret, body);
    } catch (err) {
      return this.fail(asIpcborError(err));
    }
    this.leaving();
  }

  /** @internal an extended frame arrived */
  extended(head: Uint8Array, payload: Uint8Array): void {
    if (!this.entering()) return;
    try {
      this.onExtended(head, payload);
    } catch (err) {
      return this.fail(asIpcborError(err));
    }
    this.leaving();
  }

  // ---- TransportSink ---------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    this.scheduleTurnEnd();
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.fail(asIpcborError(err));
      return;
    }
    this.syncIn();
  }

  onDrain(): void {
    this.syncOut();
    const wasBlocked = this.writeBlocked;
    this.writeBlocked = false;
    this.askTurn();
    if (!wasBlocked) return;
    this.onWritable();
    this.updateReading();
  }

  onClose(cause?: unknown): void {
    if (this.closeReason) return;
    const reason =
      cause instanceof IpcborError
        ? cause
        : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', cause === undefined ? 'the connection closed' : `the connection closed: ${messageOf(cause)}`, cause === undefined ? {} : { cause });
    this.closeReason = reason;
    this.state = 'closed';
    if (this.frameTimer !== undefined) clearTimer(this.frameTimer);
    if (this.idleTimer !== undefined) clearTimer(this.idleTimer);
    if (this.sendTimer !== undefined) clearTimer(this.sendTimer);
    this.budget.server?.forget(this.recheck);
    const gone = new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection closed', { cause: reason });
    for (const s of this.inbound.values()) s.queue.fail(gone);
    this.inbound = NONE;
    for (const o of this.outbound.values()) stop(o);
    this.outbound = NONE;
    this.wakeWriters();
    this.onClosed(reason);
    this.budget.close();
    this.resolveClosed(
      reason.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? reason : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the connection closed: ${reason.message}`, { cause: reason }),
    );
  }

  // ---- state -------------------------------------------------------------------

  /** Why the connection closed (undefined while open). */
  get reason(): IpcborError | undefined {
    return this.closeReason;
  }

  /** Call `listener` once the connection has closed. */
  onceClosed(listener: (reason: IpcborError) => void): Disposable {
    let live = true;
    void this.closed.then((r) => live && listener(r));
    return disposable(() => (live = false));
  }

  /** Close at once: what is not written is dropped. */
  destroy(cause?: IpcborError): void {
    if (this.state === 'closed') return;
    this.transport.destroy();
    this.onClose(cause);
  }

  /**
   * The other end broke the protocol or sent what cannot be read: tell it
   * why (extended protocol: ERROR on id 0; seed: the side decides), then
   * close. Every call and stream ends with the error.
   */
  fail(err: IpcborError): void {
    if (this.state === 'closed') return;
    this.report(err);
    if (this.protocol === 'extended' && !(err instanceof RemoteError)) {
      this.write(errorFrame(this.codec, 0, err.code, err.message));
      this.state = 'closing';
      this.transport.end();
      // Everything settles now; the transport's close follows. A server
      // does not wait for ever for a peer that reads nothing: once closed
      // here the connection is no longer counted anywhere.
      if (this.options.side === 'server') {
        const transport = this.transport;
        backgroundTimer(() => transport.destroy(), CLOSE_LINGER_MS);
      }
      this.onClose(err);
    } else {
      this.destroy(err);
    }
  }

  /** Read nothing more: drop what the decoder holds (a broken or timed-out frame), and its charge. */
  protected dropInput(): void {
    this.decoder.discard();
    this.syncIn();
  }

  /**
   * Flush what was written, then close. A server does not wait for ever
   * for the peer to close its side: after CLOSE_LINGER_MS it cuts the
   * connection (a half-closed peer would otherwise hold it).
   */
  protected endTransport(): void {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.transport.end();
    if (this.options.side === 'server') backgroundTimer(() => this.destroy(), CLOSE_LINGER_MS);
  }

  // ---- reading: back-pressure, budget, timers ----------------------------------

  /**
   * Before one received frame runs (a frame that throws fails the
   * connection rather than the process): is the connection still there?
   */
  private entering(): boolean {
    if (this.state === 'closed') return false;
    if (this.options.idleTimeout > 0) this.lastFrameAt = Date.now();
    return true;
  }

  /** After one received frame ran. */
  private leaving(): void {
    // Checked per frame, not per chunk: one chunk can carry thousands of
    // small frames, and the budget (or the turn) must stop them between two.
    if (++this.burst >= FRAMES_PER_TURN) {
      this.yielding = true;
      this.scheduleTurnEnd();
      this.updateReading();
    } else if (!this.budget.allows(this.budget.held - this.chargedIn)) {
      this.updateReading();
    }
  }

  private scheduleTurnEnd(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    this.defer(this.endTurn);
  }

  /** A new turn: the frame count starts again, and a connection that yielded reads on. */
  private readonly endTurn = () => {
    this.turnScheduled = false;
    this.burst = 0;
    if (!this.yielding) return;
    this.yielding = false;
    this.updateReading();
  };

  /** Charge the partial frame the decoder holds, and time it. */
  private syncIn(): void {
    const held = this.decoder.heldBytes;
    if (held !== this.chargedIn) {
      // Recorded before the charge: a release wakes the connection's
      // listener, which may come back here before this call returns.
      const delta = held - this.chargedIn;
      this.chargedIn = held;
      this.budget.charge(delta);
    }
    this.armFrameTimer();
    this.updateReading();
  }

  private armFrameTimer(): void {
    const limit = this.options.frameTimeout;
    if (limit <= 0) return;
    // Timed only while the frame waits on the peer: not while we hold it back.
    if (this.decoder.idle || !this.delivering || this.state === 'closed') {
      if (this.frameTimer !== undefined) clearTimer(this.frameTimer);
      this.frameTimer = undefined;
      return;
    }
    if (this.frameTimer !== undefined) return;
    this.frameMark = this.decoder.delivered;
    this.frameTimer = backgroundTimer(() => {
      this.frameTimer = undefined;
      // A frame was delivered meanwhile: the one pending now started later.
      if (this.decoder.delivered !== this.frameMark) return this.armFrameTimer();
      if (this.decoder.idle || !this.delivering) return;
      // A peer stuck mid-frame may not read either: no goodbye, the
      // connection and all it holds go at once.
      const err = new IpcborError('IPCBOR_ERR_FRAME_TIMEOUT', `a frame was not finished within ${limit} ms of its first byte`);
      this.report(err);
      this.destroy(err);
    }, limit);
  }

  private armIdle(limit: number): void {
    this.lastFrameAt = Date.now();
    const check = () => {
      this.idleTimer = undefined;
      if (this.state === 'closed') return;
      const idleFor = Date.now() - this.lastFrameAt;
      if (idleFor >= limit && this.quiet && this.decoder.idle) {
        this.report(new IpcborError('IPCBOR_ERR_IDLE_TIMEOUT', `closed after ${limit} ms idle`));
        this.endTransport();
        return;
      }
      this.idleTimer = backgroundTimer(check, Math.max(1, limit - Math.min(idleFor, limit) || limit));
    };
    this.idleTimer = backgroundTimer(check, limit);
  }

  /**
   * Deliver frames, and read the transport, or not.
   *
   * Frames are delivered while what the connection holds *besides* the
   * bytes still in the decoder is within its budget (and its share of the
   * server's), and, on a server, while its answers are leaving. So a frame
   * that has arrived can always be delivered once its calls are done:
   * bytes waiting in the decoder never keep themselves waiting.
   *
   * The transport is read while frames are delivered and the connection,
   * those bytes included, is within its share of the server's budget. A
   * frame larger than the connection's own budget (within maxFrameBytes)
   * still arrives whole; a server over its budget stops reading even
   * mid-frame, and the frame timer ends a peer that then never finishes.
   */
  protected updateReading(): void {
    if (this.state === 'closed') return;
    // What the pause itself is charged does not keep the connection paused.
    const held = this.budget.held - this.chargedAhead;
    const budgetOk = this.budget.allows(held - this.chargedIn);
    const deliver = budgetOk && !this.yielding && !(this.writeBlocked && this.options.side === 'server') && !this.holdsReading();
    // A frame half in may always finish when it alone keeps the server over
    // (everyone else is within the bound): finishing it is how its bytes
    // come back. That is one frame at most past the bound.
    const server = this.budget.server;
    const read = deliver && (server === undefined || server.allows(held) || (!this.decoder.idle && server.withinWithout(this.chargedIn)));
    if (!budgetOk || (deliver && !read)) {
      // Released bytes, here or anywhere on the server, bring us back.
      this.budget.listener = this.recheck;
      this.budget.server?.waitUnder(this.recheck);
    } else {
      this.budget.listener = undefined;
    }
    if (read !== this.reading) {
      this.reading = read;
      if (read) {
        this.transport.resume();
        const ahead = this.chargedAhead;
        this.chargedAhead = 0;
        this.budget.release(ahead);
      } else {
        this.transport.pause();
        this.chargedAhead = this.transport.readAhead ?? 0;
        this.budget.charge(this.chargedAhead);
      }
    }
    if (deliver !== this.delivering) {
      this.delivering = deliver;
      if (!deliver) {
        this.decoder.hold();
      } else {
        try {
          this.decoder.release();
        } catch (err) {
          this.fail(asIpcborError(err));
          return;
        }
        this.syncIn();
        return;
      }
    }
    this.armFrameTimer();
  }

  // ---- writing -------------------------------------------------------------

  protected write(parts: FrameParts): void {
    if (this.state === 'closed') return;
    if (!this.transport.write(parts)) this.writeBlocked = true;
    this.syncOut();
    if (this.writeBlocked && this.options.side === 'server') this.updateReading();
  }

  /** Charge the bytes the transport holds unwritten (a server's budget counts them). */
  private syncOut(): void {
    if (this.options.side !== 'server') return;
    const pending = this.transport.pendingBytes;
    if (pending !== this.chargedOut) {
      const delta = pending - this.chargedOut;
      this.chargedOut = pending;
      if (delta < 0) this.sent -= delta;
      this.budget.chargeOut(delta);
    }
    if (pending > 0 && this.sendTimer === undefined && this.options.frameTimeout > 0) this.armSendTimer();
  }

  /**
   * A peer that reads nothing of what is sent to it holds the server's
   * bytes. While the server's unsent bytes are over half its budget (no
   * stream may make more), a connection whose peer read nothing of them
   * for frameTimeout is cut: its bytes go, and every other connection's
   * streams go on. Load shedding, like a frame not finished in time.
   */
  private armSendTimer(): void {
    const limit = this.options.frameTimeout;
    const mark = this.sent;
    this.sendTimer = backgroundTimer(() => {
      this.sendTimer = undefined;
      if (this.state === 'closed' || this.chargedOut === 0) return;
      if (this.sent === mark && this.budget.server?.mayMake === false) {
        const err = new IpcborError('IPCBOR_ERR_FRAME_TIMEOUT', `the peer read nothing of what was sent to it for ${limit} ms while the server's unsent bytes were over half its budget`);
        this.report(err);
        this.destroy(err);
        return;
      }
      this.armSendTimer();
    }, limit);
  }

  /**
   * May a stream ask its source for another item? Not while the transport
   * is backed up, nor while the server's unsent bytes, on all its
   * connections, are over half its budget. Only bytes on their way out
   * count here: they drain as peers read, whatever the streams do, so a
   * stream never waits on itself or on the calls it would end.
   */
  private get mayWrite(): boolean {
    if (this.writeBlocked) return false;
    const server = this.budget.server;
    return this.options.side !== 'server' || server === undefined || server.mayMake;
  }

  /** Bytes written and not yet handed on by the transport (charged on a server). */
  protected get unsent(): number {
    return this.chargedOut;
  }

  /** Be told (onRoom) when the server next goes under a threshold. */
  protected waitForRoom(): void {
    this.budget.server?.waitUnder(this.recheck);
  }

  /**
   * Wait for the turn to ask a stream's source for one item (see
   * turns.ts): a number at once when it is free, nobody waits and this
   * connection's writes have room (see mayWrite). The holder gives it
   * back with `endWriteTurn(turn)`.
   */
  protected takeWriteTurn(): number | Promise<number> {
    if (this.state !== 'closed' && this.writeWaiters.length === 0 && this.mayWrite) {
      const turn = this.turns.tryTake();
      if (turn !== undefined) return turn;
    }
    return new Promise((resolve) => {
      this.writeWaiters.push(resolve);
      this.askTurn();
    });
  }

  /** The stream that had turn `turn` wrote its item, or stopped. */
  protected endWriteTurn(turn: number): void {
    this.turns.end(turn);
  }

  /** @internal TurnTaker: a stream waits, and more may be written. */
  get mayTakeTurn(): boolean {
    return this.state !== 'closed' && this.writeWaiters.length > 0 && this.mayWrite;
  }

  /** @internal TurnTaker: the turn is this connection's; its first waiting stream goes. */
  takeTurn(turn: number): void {
    this.writeWaiters.shift()!(turn);
    // The others wait for a later turn, behind the connections asking now.
    if (this.writeWaiters.length > 0) this.turns.ask(this);
  }

  /** A stream waits: ask for the turn, or for room first. */
  private askTurn(): void {
    if (this.writeWaiters.length === 0) return;
    if (this.state === 'closed') return this.wakeWriters();
    if (!this.mayWrite) {
      // Room comes back with 'drain', or when the server goes under its budget.
      if (!this.writeBlocked) this.budget.server?.waitUnder(this.recheck);
      return;
    }
    this.turns.ask(this);
  }

  /** The connection closed: every stream waiting goes on (and finds it closed). */
  private wakeWriters(): void {
    this.turns.forget(this);
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of waiters) w(0);
  }

  protected writeHead(head: readonly unknown[]): void {
    if (this.state === 'closed') return;
    this.write(encodeExtended(this.codec.encode(head)));
  }

  /**
   * RESULT or ITEM with its value. A value that cannot be encoded, or is
   * over the other end's limit, throws (the caller turns it into an ERROR).
   */
  protected writeValue(kind: number, id: number, value: unknown, method: string): void {
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
  protected checkOutgoing(length: number, what: string, method: string): void {
    if (length > this.peerMaxFrame) {
      throw new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `${what} of ${length} bytes is over the peer's limit of ${this.peerMaxFrame} bytes`, { method });
    }
  }

  /** ERROR for call `id` (0: the connection), with the error's data if it can be sent. */
  protected writeError(id: number, err: IpcborError): void {
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

  // ---- decoding ----------------------------------------------------------------

  /**
   * Decode a payload. One that fills its whole buffer is the framing's own
   * copy (a frame that arrived in pieces, or a chunk that was just this
   * payload): nothing else uses that memory, so large byte strings in it may
   * stay where they are instead of being copied again.
   */
  protected decodePayload(payload: Uint8Array): unknown {
    const owned = payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength;
    return owned && this.codec.decodeOwned ? this.codec.decodeOwned(payload) : this.codec.decode(payload);
  }

  /** Decode a payload; returns the value and what holding it costs (wire bytes plus decoded items). */
  protected decodeCosted(payload: Uint8Array): { value: unknown; cost: number } {
    const value = this.decodePayload(payload);
    return { value, cost: payload.length + decodedBytes(this.codec) };
  }

  private onExtended(headBytes: Uint8Array, payload: Uint8Array): void {
    const head = decodeHead(this.codec, headBytes);
    switch (head.kind) {
      case Kind.Item:
      case Kind.End:
        return this.onStreamFrame(head.kind, head.id, payload);
      case Kind.Credit: {
        const out = this.outbound.get(head.id);
        if (out) {
          // Credit adds up, and never past what a number holds exactly.
          out.credit = Math.min(out.credit + head.n, Number.MAX_SAFE_INTEGER);
          wake(out);
        }
        return;
      }
      case Kind.Cancel: {
        const out = this.outbound.get(head.id);
        if (out) stop(out);
        return this.onCancel(head.id);
      }
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
        if (head.id === 0) {
          // The other end gave up on the connection and is closing it.
          this.report(err);
          this.destroy(err);
          return;
        }
        // The side settles its call first (a client names the method in the
        // error its reader gets); a stream still open ends with the error.
        this.onCallError(head.id, err);
        this.closeInbound(head.id, err);
        return;
      }
      default:
        return this.onFrame(head, payload);
    }
  }

  private onStreamFrame(kind: typeof Kind.Item | typeof Kind.End, id: number, payload: Uint8Array): void {
    let s = this.inbound.get(id);
    if (!s) {
      const queue = this.inboundFor(id);
      if (!queue) return; // a late frame of a stream already finished here
      s = this.adoptInbound(id, queue);
    }
    if (kind === Kind.End) {
      this.inbound.delete(id);
      s.queue.end();
      this.onStreamEnd(id);
      return;
    }
    if (--s.allowance < 0) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `stream ${id} sent more items than its credit`);
    let item: { value: unknown; cost: number };
    try {
      item = this.decodeCosted(payload);
    } catch (err) {
      this.inbound.delete(id);
      const e = new IpcborError('IPCBOR_ERR_DECODE', `stream item: ${messageOf(err)}`, { cause: err });
      s.queue.fail(e);
      // Tell the sender to stop; the reader sees the error.
      this.writeHead([Kind.Cancel, id]);
      return;
    }
    this.budget.charge(item.cost);
    s.queue.push(item.value, item.cost);
    this.updateReading();
  }

  /** A queue for a stream this end receives on call `id`, with credit granted as the reader takes items. */
  protected openInbound(id: number): AsyncQueue<unknown> {
    const queue: AsyncQueue<unknown> = new AsyncQueue({
      released: (bytes, taken) => {
        this.budget.release(bytes);
        const s = this.inbound.get(id);
        if (!taken || s === undefined || s.queue !== queue) return;
        // Grant in batches of half a window: fewer CREDIT frames, no stall.
        if (++s.consumed >= Math.max(1, this.window >> 1)) {
          s.allowance += s.consumed;
          this.writeHead([Kind.Credit, id, s.consumed]);
          s.consumed = 0;
        }
      },
      stopped: () => {
        if (this.inbound.get(id)?.queue !== queue) return;
        this.inbound.delete(id);
        this.writeHead([Kind.Cancel, id]);
        this.onReaderStopped(id);
      },
    });
    this.adoptInbound(id, queue);
    return queue;
  }

  private adoptInbound(id: number, queue: AsyncQueue<unknown>): Inbound {
    let s = this.inbound.get(id);
    if (s?.queue === queue) return s;
    s = { queue, allowance: this.window, consumed: 0 };
    if (this.inbound === NONE) this.inbound = new Map();
    this.inbound.set(id, s);
    return s;
  }

  /** Inbound stream `id` ended (END arrived). */
  protected onStreamEnd(_id: number): void {}

  /** The reader of inbound stream `id` stopped early (CANCEL was sent). */
  protected onReaderStopped(_id: number): void {}

  /**
   * End inbound stream `id` here: the reader gets what is queued, then
   * `err`. With `drop` (the call is over and nobody will read on: a handler
   * that returned without reading its stream, a caller that gave up), what
   * is queued is released now instead of staying charged for the life of
   * the connection.
   */
  protected closeInbound(id: number, err: IpcborError, drop = false): void {
    const s = this.inbound.get(id);
    if (!s) return;
    this.inbound.delete(id);
    s.queue.fail(err, drop);
  }

  // ---- sending a stream ------------------------------------------------------

  /**
   * Send `source` as the stream of call `id`, item by item as credit
   * allows, waiting whenever the transport is backed up or the connection
   * is over its budget: each item is checked before it is asked for.
   * Resolves with how it ended: `done`, `stopped` (the other end
   * cancelled, or the call ended), or the error it failed with (sent as
   * ERROR for the call). The source is closed unless it finished by itself.
   */
  protected async sendStream(id: number, source: AsyncIterable<unknown>, method: string): Promise<'done' | 'stopped' | IpcborError> {
    const out: Outbound = { credit: this.peerWindow, stopped: false, wake: undefined };
    if (this.outbound === NONE) this.outbound = new Map();
    this.outbound.set(id, out);
    let it: AsyncIterator<unknown> | undefined;
    let sourceDone = false;
    try {
      it = source[Symbol.asyncIterator]();
      for (;;) {
        while (!out.stopped && out.credit <= 0) await new Promise<void>((r) => (out.wake = r));
        if (out.stopped) return 'stopped';
        const taken = this.takeWriteTurn();
        const turn = typeof taken === 'number' ? taken : await taken;
        try {
          if (out.stopped || this.state === 'closed') return 'stopped';
          let r: IteratorResult<unknown>;
          try {
            r = await it.next();
          } catch (err) {
            sourceDone = true;
            throw err;
          }
          if (r.done) {
            sourceDone = true;
            if (out.stopped) return 'stopped';
            this.writeHead([Kind.End, id]);
            return 'done';
          }
          if (out.stopped) return 'stopped';
          out.credit--;
          this.writeValue(Kind.Item, id, r.value, method);
        } finally {
          this.endWriteTurn(turn);
        }
      }
    } catch (err) {
      if (out.stopped) return 'stopped';
      const e = asIpcborError(err, method, 'IPCBOR_ERR_HANDLER');
      this.writeError(id, e);
      return e;
    } finally {
      if (this.outbound.get(id) === out) this.outbound.delete(id);
      if (!sourceDone && it) {
        try {
          await it.return?.();
        } catch {
          // the source's own cleanup failed; nobody is left to tell
        }
      }
    }
  }

  /** Stop sending the stream of call `id` (the call ended here). */
  protected stopOutbound(id: number): void {
    const out = this.outbound.get(id);
    if (!out) return;
    this.outbound.delete(id);
    stop(out);
  }
}

function wake(out: Outbound): void {
  const w = out.wake;
  out.wake = undefined;
  w?.();
}

function stop(out: Outbound): void {
  out.stopped = true;
  wake(out);
}

/** Whatever was thrown, as an IpcborError (a foreign error keeps its text and becomes the cause). */
export function asIpcborError(err: unknown, method?: string, code: 'IPCBOR_ERR_PROTOCOL' | 'IPCBOR_ERR_HANDLER' = 'IPCBOR_ERR_PROTOCOL'): IpcborError {
  if (err instanceof IpcborError) return err;
  return new IpcborError(code, messageOf(err), method === undefined ? { cause: err } : { cause: err, method });
}
