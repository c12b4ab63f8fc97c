/**
 * The server's end of one connection: the peer, plus what only a server
 * does. It speaks the base framing until the client opens the extended
 * protocol with a hello, turns each request into an IncomingCall for the
 * executor, answers calls, and sends events to the names it subscribed to.
 *
 * Base framing has no request id, so base-framing calls run concurrently but their
 * answers leave in request order (a FIFO of slots). Extended calls carry
 * ids and are answered as soon as they finish.
 */
import {
  CLOSE_LINGER_MS,
  DEFAULT_EVENT_QUEUE,
  DEFAULT_EVENT_QUEUE_BYTES,
  DEFAULT_FRAME_TIMEOUT,
  DEFAULT_MAX_CONNECTION_BYTES,
  DEFAULT_MAX_EVENT_NAME_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_INFLIGHT,
  DEFAULT_MAX_METHOD_BYTES,
  DEFAULT_MAX_SUBSCRIPTIONS,
  DEFAULT_STREAM_WINDOW,
  FAIL_GRACE_MS,
  MAX_TIMER_MS,
} from '../constants.js';
import { IdTable } from '../peer/id-table.js';
import { kept } from '../codec/encode.js';
import { cbor, wireCodec, type Codec } from '../codec/cbor.js';
import { IpcborError, asIpcborError, guarded, messageOf } from '../errors.js';
import { encodeErrorResponse, encodeResponse, type FrameParts } from '../frame/encoder.js';
import { decodedBytes, type ConnectionBudget } from '../peer/budget.js';
import { Peer, peerConfig, type PeerConfig } from '../peer/peer.js';
import { backgroundTimer } from '../peer/timers.js';
import type { PeerRole } from '../peer/role.js';
import type { AsyncQueue } from '../peer/queue.js';
import type { WriteTurns } from '../peer/turns.js';
import { discardIterable, isAsyncIterable } from '../peer/streams.js';
import { HELLO_METHOD, Kind, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD, clip, eventFrame, type Head } from '../protocol/heads.js';
import { readHelloRequest, type HelloResponse } from '../protocol/hello.js';
import type { ConnectionInfo, Transport, TransportSink } from '../transport.js';
import { Context, type Executor, type IncomingCall } from './call.js';

/** The limits of each connection a server holds; the defaults are the `DEFAULT_*` constants. */
export interface ServerLimits {
  /** Longest method name accepted, in UTF-8 bytes (default 256). */
  maxMethodBytes?: number;
  /** Largest payload of one frame accepted, in bytes (default 16 MiB). */
  maxFrameBytes?: number;
  /**
   * Calls in flight on one connection (default 1024). Base framing: the
   * server stops reading until some finish. Extended: announced in the
   * hello, and calls beyond it are refused with IPCBOR_ERR_OVERLOADED.
   */
  maxInflight?: number;
  /** Longest deadline the server grants a call, in ms; longer or absent deadlines are cut to it. Default: none. */
  maxTimeout?: number;
  /** Stream items the server accepts per stream before granting more (default 64). */
  window?: number;
  /** Events queued for a slow subscriber before the oldest are dropped (default 1024). */
  eventQueue?: number;
  /** Bytes of events queued for a slow subscriber before the oldest are dropped (default 4 MiB). */
  eventQueueBytes?: number;
  /** Bytes one connection may make the server hold before it stops reading it (default 32 MiB). */
  maxConnectionBytes?: number;
  /** Event names one connection may subscribe to (default 256). */
  maxSubscriptions?: number;
  /** Longest event name, in UTF-8 bytes (default 256). */
  maxEventNameBytes?: number;
  /** ms a client has to finish a frame once its first byte arrived (default 30,000; 0: no limit). */
  frameTimeout?: number;
  /** ms a connection may sit idle (no frame, nothing in flight) before it is closed (default 0: never). */
  idleTimeout?: number;
}

export interface ServerConnectionOptions extends ServerLimits {
  /** The CBOR codec (default {@link cbor}). */
  codec?: Codec;
  /** Answer the hello and speak the extended protocol (default true). */
  extended?: boolean;
  /** Free text sent in the hello answer. */
  serverName?: string;
  /**
   * Called with failures an operator should see: a handler threw (its
   * caller also gets the error), a notification's handler threw or was
   * dropped, a protocol violation. `err` is an IpcborError; a handler's is
   * IPCBOR_ERR_HANDLER, with `method` set and what it threw as `cause`.
   */
  onError?: (err: unknown, connection: ConnectionInfo) => void;
}

/** Every limit of a server connection, each with its default filled in once (see `serverLimits`). */
export type ResolvedLimits = Required<Omit<ServerLimits, 'maxTimeout'>> & Pick<ServerLimits, 'maxTimeout'>;

/** Fill in the defaults of `options` once: every use site reads the resolved value. */
export function serverLimits(options: ServerLimits): ResolvedLimits {
  const limits: ResolvedLimits = {
    maxMethodBytes: options.maxMethodBytes ?? DEFAULT_MAX_METHOD_BYTES,
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxInflight: options.maxInflight ?? DEFAULT_MAX_INFLIGHT,
    window: options.window ?? DEFAULT_STREAM_WINDOW,
    eventQueue: options.eventQueue ?? DEFAULT_EVENT_QUEUE,
    eventQueueBytes: options.eventQueueBytes ?? DEFAULT_EVENT_QUEUE_BYTES,
    maxConnectionBytes: options.maxConnectionBytes ?? DEFAULT_MAX_CONNECTION_BYTES,
    maxSubscriptions: options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS,
    maxEventNameBytes: options.maxEventNameBytes ?? DEFAULT_MAX_EVENT_NAME_BYTES,
    frameTimeout: options.frameTimeout ?? DEFAULT_FRAME_TIMEOUT,
    idleTimeout: options.idleTimeout ?? 0,
  };
  if (options.maxTimeout !== undefined) limits.maxTimeout = options.maxTimeout;
  return limits;
}

/** A server connection as its server's users hold it (`onConnect`, `connection(id)`). */
export interface ConnectionHandle {
  /** Facts about the peer, as handlers see them in `ctx.connection`. */
  readonly info: ConnectionInfo;
  /** Calls running or owed an answer. */
  readonly inflight: number;
  /** Resolves once the connection has closed: IPCBOR_ERR_CONNECTION_CLOSED, with the reason as its cause. */
  readonly closed: Promise<IpcborError>;
  /** Why the connection closed (undefined while open). */
  readonly reason: IpcborError | undefined;
  /** Take no new calls, let calls in flight finish and their answers leave, then close. */
  shutdown(): Promise<void>;
  /** Close at once: calls in flight are aborted, what is not written is dropped. */
  destroy(cause?: IpcborError): void;
  /**
   * Send event `name` to this connection alone, whether it subscribed or
   * not (extended protocol; throws IPCBOR_ERR_NOT_SUPPORTED on the base
   * framing). A slow reader's events queue and drop as any event does.
   */
  emit(name: string, payload?: unknown): void;
}

/** An event held back for a slow subscriber. */
interface QueuedEvent {
  payload: Uint8Array;
  name: string;
  alias: string | undefined;
}

/** The empty event queue every connection starts with, shared and never written to. */
const NO_EVENTS: never[] = [];

/** What all the connections of one server share, made once (connectionShared). */
export interface ConnectionShared {
  readonly host: ConnectionHost;
  readonly options: ServerConnectionOptions;
  readonly limits: ResolvedLimits;
  /** What each call held costs beyond its payload (the call, and what the executor keeps of it). */
  readonly callBytes: number;
  readonly config: PeerConfig;
}

/** Make what a server's connections share: its limits resolved and its peer config, once. */
export function connectionShared(host: ConnectionHost, options: ServerConnectionOptions, limits: ResolvedLimits = serverLimits(options), turns?: WriteTurns): ConnectionShared {
  const config = peerConfig({
    codec: options.codec ?? wireCodec,
    maxFrameBytes: limits.maxFrameBytes,
    maxMethodBytes: limits.maxMethodBytes,
    receives: 'request',
    takes: [Kind.Call, Kind.Notify],
    other: 'client',
    window: limits.window,
    guardWrites: true,
    frameTimeout: limits.frameTimeout,
    idleTimeout: limits.idleTimeout,
    linger: CLOSE_LINGER_MS,
    ...(turns === undefined ? {} : { turns }),
  });
  return Object.freeze({ host, options, limits, callBytes: CALL_BYTES + (host.executor.heldBytes ?? 0), config });
}

/** What a connection asks of its server. */
export interface ConnectionHost {
  readonly executor: Executor;
  /** Event names a client may subscribe to (undefined: any). */
  eventNames(): ReadonlySet<string> | undefined;
  /**
   * The connection's protocol is known (`info.protocol` is final): its
   * hello was answered (extended), or its first request of the base
   * framing arrived. Called at most once per connection.
   */
  ready?(c: ServerConnection): void;
}

/**
 * What a call costs the budget beyond its payload: its objects, its
 * context, its place in the call table, the reactions to a handler's
 * promise. So the budget bounds the number of calls held too, however
 * small their payloads. Measured (test/integration/held-costs.test.ts, heap after
 * GC per call held, Node 20 and 24): a parked call about 500 bytes, a call whose async
 * handler is pending about 1,100, the handler's own promise included.
 */
export const CALL_BYTES = 1536;

/** The empty call table every connection starts with, shared and never written to. */
const NO_CALLS = new IdTable<never>();

/**
 * What an event waiting for a slow subscriber holds beyond its payload's
 * bytes: its entry in the connection's queue and the payload's own object
 * (the payload may be shared with other subscribers; each is charged in
 * full). Measured 271 bytes (288 on Node 24) for a small event
 * (test/integration/held-costs.test.ts).
 */
const EVENT_ENTRY_BYTES = 384;


const utf8 = new TextEncoder();
const utf8Length = (text: string): number => (text.length * 3 <= 255 ? text.length : utf8.encode(text).length);

/** The payload of a call that ended before its params were read. */
const ENDED = new Uint8Array(0);


/** A call on this connection: base (answered in order), extended (by id), or a notification (never answered). */
class ServerCall implements IncomingCall {
  done = false;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes charged to the budget for this call (its payload, then its decoded params). */
  cost: number;
  /** Base framing: the answer, once there is one, waiting for its turn. */
  answer: FrameParts | undefined;
  /** The call's own stream of params, when it has one. */
  input: AsyncQueue<unknown> | undefined;
  /** The params, once decoded (`decoded` says whether they are). */
  private decoded = false;
  private value: unknown = undefined;

  constructor(
    private readonly conn: ServerConnection,
    readonly kind: 'base' | 'call' | 'notify',
    readonly id: number,
    readonly method: string,
    readonly ctx: Context,
    private payload: Uint8Array | undefined,
    callBytes: number,
  ) {
    this.cost = callBytes + (payload?.length ?? 0);
  }

  /** The call is over: its payload, no longer charged, must not stay held (a parked call may wait long after). */
  dropPayload(): void {
    if (this.payload !== undefined) this.payload = ENDED;
  }

  /**
   * The call is kept past the turn it arrived in (parked, or its handler
   * has not read its params): its payload must not keep alive the whole
   * chunk it was read in, of which it may be a small part.
   */
  detach(): void {
    const p = this.payload;
    if (p !== undefined && p !== ENDED && p.byteLength < p.buffer.byteLength) this.payload = p.slice();
  }

  get oneWay(): boolean {
    return this.kind === 'notify';
  }

  params(): unknown {
    if (this.input) return this.input;
    if (this.decoded) return this.value;
    const payload = this.payload;
    if (payload === ENDED) throw new IpcborError('IPCBOR_ERR_CANCELLED', 'the call has ended: its params are gone', { method: this.method });
    if (payload === undefined || payload.length === 0) return undefined;
    this.payload = undefined;
    // Kept: the event loop's message.params() may be called more than once.
    this.value = this.conn.decodeParams(this, payload);
    this.decoded = true;
    return this.value;
  }

  reply(value: unknown): void {
    this.conn.complete(this, value);
  }

  fail(error: IpcborError): void {
    this.conn.complete(this, undefined, error);
  }

  report(error: IpcborError): void {
    // A notification's failure is reported when it ends (complete), whatever it was.
    if (this.kind !== 'notify') this.conn.report(error);
  }
}

export class ServerConnection implements PeerRole, ConnectionHandle, TransportSink {
  /** @internal the connection's peer: framing, phase, flow, timers, streams */
  readonly peer: Peer;
  /** Kept up to date by this connection (its framing): read-only to everyone else. */
  readonly info: { -readonly [K in keyof ConnectionInfo]: ConnectionInfo[K] };
  /** @internal Events this connection missed because it read too slowly (sent with the next event). */
  eventsDropped = 0;
  /** Event names this connection subscribed to; `*` means all (made on first subscribe). */
  private subs: Set<string> | undefined;
  /**
   * A connection the server refuses (too many connections, shutting
   * down): its first request is answered with this error, then it closes.
   */
  private readonly refusal: IpcborError | undefined;
  /** What every connection of the server shares: its host, options, limits, peer config. */
  private readonly shared: ConnectionShared;
  /** Base-framing calls, in request order: their answers leave in this order. */
  private readonly slots: ServerCall[] = [];
  /** Extended calls by id. */
  /** Calls in flight by id (the shared empty table until the first call: held per connection). */
  private calls: IdTable<ServerCall> = NO_CALLS;
  /** Base-framing calls and notifications running, aborted when the connection goes. */
  private running: Set<ServerCall> | undefined;
  private requests = 0;
  private notifying = 0;
  /** Events held back for want of room (made on first use). */
  private eventBacklog: QueuedEvent[] = NO_EVENTS;
  private eventBytes = 0;
  private shutdownDone: Promise<void> | undefined;
  /** The base framing was broken: the error the last answer carries. */
  private broken: IpcborError | undefined;
  /** The host was told the protocol (see ConnectionHost.ready). */
  private announced = false;

  /** `shared`: see connectionShared (a server makes it once for all its connections). */
  constructor(transport: Transport, shared: ConnectionShared, info: Omit<ConnectionInfo, 'protocol'>, budget: ConnectionBudget, refusal?: IpcborError) {
    this.shared = shared;
    this.peer = new Peer(transport, this, shared.config, budget);
    this.refusal = refusal;
    // A plain object: handlers may keep it, and it must not keep the connection.
    this.info = { ...info, protocol: 'base' };
  }

  // ---- the handle ----------------------------------------------------------------

  /** Calls running or owed an answer. */
  get inflight(): number {
    return this.slots.length + this.calls.size;
  }

  get closed(): Promise<IpcborError> {
    return this.peer.closed;
  }

  get reason(): IpcborError | undefined {
    return this.peer.reason;
  }

  /**
   * Take no new calls, let calls in flight finish and their answers leave,
   * then end the connection. Resolves when it is closed; every caller gets
   * the same promise.
   */
  shutdown(): Promise<void> {
    this.shutdownDone ??= (() => {
      this.peer.beginClosing('drain');
      this.endIfIdle();
      return this.peer.closed.then(() => undefined);
    })();
    return this.shutdownDone;
  }

  destroy(cause?: IpcborError): void {
    this.peer.destroy(cause);
  }

  emit(name: string, payload: unknown = null): void {
    if (this.peer.protocol !== 'extended') throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this connection does not speak');
    this.sendEvent(name, this.peer.codec.encode(payload));
  }

  // ---- TransportSink: the peer's -------------------------------------------------

  /** TransportSink: bytes arrived (handed to the peer). */
  onData(chunk: Uint8Array): void {
    this.peer.onData(chunk);
  }

  /** TransportSink: the transport takes writes again. */
  onDrain(): void {
    this.peer.onDrain();
  }

  /** TransportSink: the transport closed. */
  onClose(cause?: unknown): void {
    this.peer.onClose(cause);
  }

  // ---- the role ------------------------------------------------------------------

  /** PeerRole: nothing in flight. */
  get quiet(): boolean {
    return this.slots.length === 0 && this.calls.size === 0 && this.notifying === 0;
  }

  /**
   * @internal Base framing has no other flow control: at `maxInflight`
   * answers owed, or once the connection is closing, reading stops. The
   * extended protocol reads on (CANCEL, CREDIT and stream items are what
   * let calls finish), and refuses calls beyond the limit instead.
   */
  holdsReading(): boolean {
    const phase = this.peer.phase;
    return phase.framing === 'base' && (this.slots.length >= this.shared.limits.maxInflight || phase.stage !== 'open');
  }

  // ---- base framing ---------------------------------------------------------

  /** @internal */
  request(method: string, payload: Uint8Array): void {
    const peer = this.peer;
    const first = this.requests++ === 0;
    if (this.refusal) {
      // A hello hears the refusal as its answer (docs/PROTOCOL.md §6), a base-framing call as its error.
      const r = this.refusal;
      peer.write(method === HELLO_METHOD && first ? encodeResponse(0, peer.codec.encode({ refused: { code: r.code, message: r.message } })) : encodeErrorResponse(r.message));
      peer.beginClosing('end');
      return;
    }
    if (method === HELLO_METHOD && first && this.shared.options.extended !== false) {
      this.answerHello(payload);
      return;
    }
    this.announce();
    const call = new ServerCall(this, 'base', 0, method, this.context(method, undefined), payload, this.shared.callBytes);
    peer.budget.charge(call.cost);
    this.slots.push(call);
    if (peer.phase.stage !== 'open') {
      call.fail(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down', { method }));
      return;
    }
    (this.running ??= new Set()).add(call);
    peer.flow.update();
    this.start(call, this.shared.limits.maxTimeout);
  }

  private answerHello(payload: Uint8Array): void {
    const peer = this.peer;
    let parts: FrameParts;
    try {
      const hello = readHelloRequest(peer.codec.decode(payload));
      const answer: HelloResponse = {
        version: hello.version,
        maxFrameBytes: peer.decoder.maxFrameBytes,
        window: peer.window,
        maxInflight: this.shared.limits.maxInflight,
        server: this.shared.options.serverName ?? 'ipcbor',
      };
      parts = encodeResponse(0, peer.codec.encode(answer));
      // Everything after the hello request is extended framing.
      peer.enterExtended(hello);
      this.info.protocol = 'extended';
    } catch (err) {
      parts = encodeErrorResponse(clip(messageOf(err)));
    }
    peer.write(parts);
    // A hello refused leaves the base framing: its next request says so.
    if (this.info.protocol === 'extended') this.announce();
  }

  /** Tell the host, once, that this connection's protocol is known. */
  private announce(): void {
    if (this.announced) return;
    this.announced = true;
    const ready = this.shared.host.ready;
    if (ready) guarded(() => ready(this));
  }

  /**
   * @internal Once closed: undefined when the connection closed cleanly
   * (either end ended it between two frames, with no error), else why it
   * did not (the base framing broken, a protocol error, a reset, a cut).
   */
  get closeError(): IpcborError | undefined {
    if (this.broken) return this.broken;
    return this.peer.closedCleanly ? undefined : this.peer.reason;
  }

  private baseAnswer(value: unknown, error: IpcborError | undefined): FrameParts {
    if (error !== undefined) return encodeErrorResponse(clip(error.message));
    if (isAsyncIterable(value)) {
      // The base framing has one answer per request: no streams. Close the
      // source so its cleanup runs, and say why.
      discardIterable(value);
      return encodeErrorResponse('this method answers with a stream, which needs the extended protocol');
    }
    try {
      return encodeResponse(0, this.peer.codec.encode(value));
    } catch (err) {
      return encodeErrorResponse(clip(`result could not be encoded: ${messageOf(err)}`));
    }
  }

  /** Write the answers that are next in order. */
  private flushSlots(): void {
    const slots = this.slots;
    const peer = this.peer;
    while (slots.length > 0 && slots[0]!.answer !== undefined) {
      const call = slots.shift()!;
      const answer = call.answer!;
      peer.budget.release(answerBytes(answer));
      peer.write(answer);
    }
    peer.flow.update();
    this.endIfIdle();
  }

  // ---- extended framing -----------------------------------------------------

  /** CALL or NOTIFY */
  frame(head: Head, payload: Uint8Array): void {
    if (head.kind === Kind.Call) return this.onCall(head.id, head.method, head.opts.timeout, head.opts.stream === true, payload);
    if (head.kind === Kind.Notify) return this.onNotify(head.method, payload);
  }

  /** @internal */
  cancelled(id: number): void {
    const call = this.calls.get(id);
    if (call) this.finish(call, new IpcborError('IPCBOR_ERR_CANCELLED', 'the caller cancelled the call', { method: call.method }));
  }

  private onCall(id: number, method: string, timeout: number | undefined, streamed: boolean, payload: Uint8Array): void {
    if (this.calls.has(id)) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `call id ${id} is already in flight`);
    const peer = this.peer;
    const limits = this.shared.limits;
    if (peer.phase.stage !== 'open') return peer.writeError(id, new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down', { method }));
    if (this.calls.size >= limits.maxInflight) return peer.writeError(id, new IpcborError('IPCBOR_ERR_OVERLOADED', `more than ${limits.maxInflight} calls in flight on this connection`, { method }));
    if (utf8Length(method) > limits.maxMethodBytes) {
      return peer.writeError(id, new IpcborError('IPCBOR_ERR_METHOD_TOO_LONG', `method name of ${utf8Length(method)} bytes is over the limit of ${limits.maxMethodBytes} bytes`));
    }
    const max = limits.maxTimeout;
    const ms = timeout === undefined ? max : max === undefined ? timeout : Math.min(timeout, max);
    const call = new ServerCall(this, 'call', id, method, this.context(method, ms), streamed ? undefined : payload, this.shared.callBytes);
    peer.budget.charge(call.cost);
    if (this.calls === NO_CALLS) this.calls = new IdTable();
    this.calls.set(id, call);
    if (streamed) call.input = peer.streams.open(id);
    this.start(call, ms);
  }

  /**
   * A one-way call. Notifications have their own limit (`maxInflight`
   * running at once; beyond it they are dropped and reported to onError),
   * since the client cannot see them finish and so cannot count them.
   */
  private onNotify(method: string, payload: Uint8Array): void {
    const peer = this.peer;
    if (peer.phase.stage !== 'open') return;
    const max = this.shared.limits.maxInflight;
    if (this.notifying >= max) {
      this.report(new IpcborError('IPCBOR_ERR_OVERLOADED', `notification ${method} dropped: ${max} notifications already running`, { method }));
      return;
    }
    this.notifying++;
    const call = new ServerCall(this, 'notify', 0, method, this.context(method, this.shared.limits.maxTimeout), payload, this.shared.callBytes);
    peer.budget.charge(call.cost);
    (this.running ??= new Set()).add(call);
    this.start(call, this.shared.limits.maxTimeout);
  }

  private context(method: string, ms: number | undefined): Context {
    return new Context(method, this.info, ms === undefined || ms > MAX_TIMER_MS ? undefined : Date.now() + ms);
  }

  /** Arm the call's deadline and hand it to the executor (subscriptions are the connection's own business). */
  private start(call: ServerCall, ms: number | undefined): void {
    if (ms !== undefined && ms <= MAX_TIMER_MS) {
      const expire = () => {
        const err = new IpcborError('IPCBOR_ERR_DEADLINE_EXCEEDED', `deadline of ${ms} ms exceeded`, { method: call.method });
        if (call.kind === 'notify') this.finish(call, err);
        else call.fail(err);
      };
      // A deadline already past: the handler is not run at all.
      if (ms <= 0) return expire();
      call.timer = backgroundTimer(expire, ms);
    }
    if (call.method === SUBSCRIBE_METHOD || call.method === UNSUBSCRIBE_METHOD) {
      this.subscription(call);
      return;
    }
    try {
      this.shared.host.executor(call);
    } catch (err) {
      call.fail(asIpcborError(err, { method: call.method, code: 'IPCBOR_ERR_HANDLER' }));
      return;
    }
    if (!call.done) call.detach();
  }

  /** @internal Decode a call's params, charging what they hold to the budget. */
  decodeParams(call: ServerCall, payload: Uint8Array): unknown {
    const peer = this.peer;
    try {
      const value = peer.decodePayload(payload);
      if (!call.done) {
        const extra = decodedBytes(peer.codec);
        call.cost += extra;
        peer.budget.charge(extra);
      }
      return value;
    } catch (err) {
      throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `invalid payload: ${messageOf(err)}`, { method: call.method, cause: err });
    }
  }

  /** @internal A call settled (the handler's value or error, a deadline, a refusal): answer it as its framing wants. */
  complete(call: ServerCall, value: unknown, error?: IpcborError): void {
    if (call.done || (call.kind === 'base' && call.answer !== undefined)) {
      // Cancelled, past its deadline, or the connection went: a stream
      // returned now is read by nobody.
      if (error === undefined) discardIterable(value);
      return;
    }
    if (call.kind === 'notify') {
      if (error === undefined) discardIterable(value);
      else this.report(error);
      this.finish(call);
      return;
    }
    const peer = this.peer;
    if (call.kind === 'base') {
      const answer = this.baseAnswer(value, error);
      // An answer that must wait for those before it is kept a while: not as a view into a shared slab.
      call.answer = this.slots[0] === call ? answer : [answer[0], kept(answer[1])];
      peer.budget.charge(answerBytes(answer));
      this.finish(call, error);
      this.flushSlots();
      return;
    }
    if (error !== undefined) {
      peer.writeError(call.id, error);
      this.finish(call, error);
      return;
    }
    if (isAsyncIterable(value)) {
      // The call stays in flight until its stream ends.
      void peer.streams.send(call.id, value, call.method).then((end) => this.finish(call, end instanceof IpcborError ? end : undefined));
      return;
    }
    try {
      peer.writeValue(Kind.Result, call.id, value, call.method);
    } catch (err) {
      peer.writeError(call.id, asIpcborError(err, { method: call.method, code: 'IPCBOR_ERR_HANDLER' }));
    }
    this.finish(call);
  }


  /** The call is over: release all it held; `reason` (if any) aborts its handler's signal. */
  private finish(call: ServerCall, reason?: IpcborError): void {
    if (call.done) return;
    call.done = true;
    call.dropPayload();
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (reason) call.ctx.abort(reason);
    const peer = this.peer;
    peer.budget.release(call.cost);
    call.cost = 0;
    if (this.eventBacklog.length > 0) this.roomMade();
    if (call.kind === 'call') {
      this.calls.delete(call.id);
      // Only a streamed call has either stream: most calls make no error here.
      peer.endStreams(call.id, call.input ? (reason ?? new IpcborError('IPCBOR_ERR_CANCELLED', 'the call ended', { method: call.method })) : undefined, true);
    } else {
      this.running?.delete(call);
      if (call.kind === 'notify') this.notifying--;
    }
    this.endIfIdle();
  }

  /** PeerRole: the connection closed; settle everything. */
  connectionClosed(reason: IpcborError): void {
    // Handlers learn why: the connection closed, or the error it failed with.
    for (const c of [...(this.running ?? []), ...this.calls.valuesList()]) this.finish(c, reason);
    this.slots.length = 0;
    this.eventBacklog = NO_EVENTS;
    this.eventBytes = 0;
  }

  private endIfIdle(): void {
    if (this.peer.phase.stage === 'draining' && this.quiet) this.peer.beginClosing('end');
  }

  // ---- subscriptions and events ------------------------------------------------

  /** `$ipcbor.subscribe` / `$ipcbor.unsubscribe` {event}: connection state, answered at once. */
  private subscription(call: ServerCall): void {
    const method = call.method;
    if (this.peer.protocol !== 'extended') {
      return call.fail(new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol', { method }));
    }
    let event: unknown;
    try {
      const p = call.params() as { event?: unknown } | null;
      // Other keys are ignored: a later version may add some.
      event = typeof p === 'object' && p !== null ? p.event : undefined;
    } catch {
      event = undefined;
    }
    if (typeof event !== 'string' || event === '') {
      return call.fail(new IpcborError('IPCBOR_ERR_INVALID_PARAMS', 'event: expected a non-empty event name (or "*")', { method }));
    }
    const maxName = this.shared.limits.maxEventNameBytes;
    if (utf8.encode(event).length > maxName) {
      return call.fail(new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `event: name over the limit of ${maxName} bytes`, { method }));
    }
    if (method === UNSUBSCRIBE_METHOD) {
      this.subs?.delete(event);
      return call.reply(null);
    }
    const known = this.shared.host.eventNames();
    if (event !== '*' && known !== undefined && !known.has(event)) {
      return call.fail(new IpcborError('IPCBOR_ERR_UNKNOWN_EVENT', `unknown event: ${event}`, { method }));
    }
    const max = this.shared.limits.maxSubscriptions;
    const subs = (this.subs ??= new Set());
    if (!subs.has(event) && subs.size >= max) {
      return call.fail(new IpcborError('IPCBOR_ERR_OVERLOADED', `more than ${max} subscriptions on this connection`, { method }));
    }
    subs.add(event);
    call.reply(null);
  }

  /** @internal Does this connection want events of this name (by the name or through `*`)? */
  wants(name: string): boolean {
    const subs = this.subs;
    return subs !== undefined && this.peer.phase.stage !== 'closed' && (subs.has(name) || subs.has('*'));
  }

  /**
   * @internal Deliver an encoded event. An event is the server's doing, but a
   * subscriber that does not read makes the server hold it: it is written
   * only while the transport takes more and the connection is within its
   * budget (and its share of the server's). Otherwise it waits in a queue
   * bounded by count and bytes, charged to the budget, from which the
   * oldest are dropped past those bounds or while the connection is over
   * its budget (the newest stays: one event past the bound at most). The
   * next event delivered carries the count of those dropped.
   */
  sendEvent(name: string, payload: Uint8Array, alias?: string): void {
    const peer = this.peer;
    if (peer.phase.stage === 'closed') return;
    if (payload.length > peer.peerMaxFrame) {
      // Larger than this client accepts: dropped, and counted as such.
      this.eventsDropped++;
      return;
    }
    const room = this.eventRoom;
    if (!peer.writeBlocked && room) {
      // Those waiting go first, in order.
      if (this.eventBacklog.length > 0) this.drained();
      if (!peer.writeBlocked && this.eventBacklog.length === 0) return this.writeEvent(name, payload, alias);
    }
    // Held back for want of room: sent when some is released.
    if (!room) peer.flow.waitForRoom();
    const limits = this.shared.limits;
    if (this.eventBacklog === NO_EVENTS) this.eventBacklog = [];
    // Held for a while, maybe long: not as a view that keeps a shared slab alive.
    this.eventBacklog.push({ payload: kept(payload), name, alias });
    this.eventBytes += payload.length;
    peer.budget.charge(payload.length + EVENT_ENTRY_BYTES);
    while (this.eventBacklog.length > 1 && (this.eventBacklog.length > limits.eventQueue || this.eventBytes > limits.eventQueueBytes || !this.eventRoom)) {
      peer.budget.release(this.shiftEvent().payload.length + EVENT_ENTRY_BYTES);
      this.eventsDropped++;
    }
  }

  /**
   * May this connection be given another event? While what it has to send
   * (unsent bytes and queued events) is within its budget and its share
   * of the server's: what it holds otherwise (its calls) does not keep its
   * events from it.
   */
  private get eventRoom(): boolean {
    const budget = this.peer.budget;
    const own = this.peer.flow.unsent + this.eventBytes + this.eventBacklog.length * EVENT_ENTRY_BYTES;
    return own <= budget.limit && (budget.server === undefined || budget.server.allows(own));
  }

  private shiftEvent(): QueuedEvent {
    const e = this.eventBacklog.shift()!;
    this.eventBytes -= e.payload.length;
    return e;
  }

  private writeEvent(name: string, payload: Uint8Array, alias: string | undefined): void {
    const dropped = this.eventsDropped;
    this.eventsDropped = 0;
    this.peer.write(eventFrame(this.peer.codec, name, dropped, alias, payload));
  }

  /** @internal */
  roomMade(): void {
    if (this.eventBacklog.length > 0 && this.eventRoom) this.drained();
  }

  /** @internal */
  drained(): void {
    const peer = this.peer;
    while (this.eventBacklog.length > 0 && !peer.writeBlocked && peer.phase.stage !== 'closed') {
      const e = this.shiftEvent();
      peer.budget.release(e.payload.length + EVENT_ENTRY_BYTES);
      this.writeEvent(e.name, e.payload, e.alias);
    }
  }

  // ---- failures -----------------------------------------------------------------

  /** @internal */
  report(err: IpcborError): void {
    const onError = this.shared.options.onError;
    if (onError) guarded(() => onError(err, this.info));
  }

  /**
   * @internal A frame of the base framing that cannot be parsed, or a
   * broken rule: the answers owed to earlier requests leave first (for at
   * most FAIL_GRACE_MS), then the error's text, then the connection ends.
   */
  brokeBaseFraming(err: IpcborError): boolean {
    if (this.broken) return true;
    this.broken = err;
    this.report(err);
    const peer = this.peer;
    peer.beginClosing('drain');
    // What the broken frame left in the decoder is garbage: let it go now,
    // not when the answers owed have left.
    peer.dropInput();
    const last = new ServerCall(this, 'base', 0, '', this.context('', undefined), undefined, 0);
    last.answer = encodeErrorResponse(clip(err.message));
    last.done = true;
    peer.budget.charge(answerBytes(last.answer));
    this.slots.push(last);
    peer.timers.lingerThenCut(FAIL_GRACE_MS, err);
    this.flushSlots();
    return true;
  }
}

function answerBytes(parts: FrameParts): number {
  return parts[0].length + parts[1].length;
}
