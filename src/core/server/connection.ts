/**
 * The server's end of one connection: the peer, plus what only a server
 * does. It speaks the seed framing until the client opens the extended
 * protocol with a hello, turns each request into an IncomingCall for the
 * executor, answers calls, and sends events to the names it subscribed to.
 *
 * Seed framing has no request id, so seed calls run concurrently but their
 * answers leave in request order (a FIFO of slots). Extended calls carry
 * ids and are answered as soon as they finish.
 */
import {
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
  MAX_TIMER_MS,
} from '../constants.js';
import { cbor, type Codec } from '../codec/cbor.js';
import { IpcborError, messageOf, type RemoteError } from '../errors.js';
import { encodeErrorResponse, encodeExtended, encodeResponse, type FrameParts } from '../frame/encoder.js';
import { ConnectionBudget, decodedBytes } from '../peer/budget.js';
import { Peer, asIpcborError, backgroundTimer } from '../peer/peer.js';
import type { AsyncQueue } from '../peer/queue.js';
import type { WriteTurns } from '../peer/turns.js';
import { discardIterable, isAsyncIterable } from '../peer/streams.js';
import { HELLO_METHOD, Kind, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD, clip, type Head } from '../protocol/heads.js';
import { readHelloRequest, type HelloResponse } from '../protocol/hello.js';
import type { ConnectionInfo, Transport } from '../transport.js';
import { Context, type Executor, type IncomingCall } from './call.js';

export interface ServerLimits {
  /** Longest method name accepted, in UTF-8 bytes (default 256). */
  maxMethodBytes?: number;
  /** Largest payload of one frame accepted, in bytes (default 16 MiB). */
  maxFrameBytes?: number;
  /**
   * Calls in flight on one connection (default 1024). Seed framing: the
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
  codec?: Codec;
  /** Answer the hello and speak the extended protocol (default true). */
  extended?: boolean;
  /** Free text sent in the hello answer. */
  serverName?: string;
  /** Called with failures nobody else hears of (a notification's handler threw, a protocol violation). */
  onError?: (err: unknown, connection: ConnectionInfo) => void;
}

/** What a connection asks of its server. */
export interface ConnectionHost {
  readonly executor: Executor;
  /** Event names a client may subscribe to (undefined: any). */
  eventNames(): ReadonlySet<string> | undefined;
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

/**
 * What an event waiting for a slow subscriber holds beyond its payload's
 * bytes: its entry in the connection's queue and the payload's own object
 * (the payload may be shared with other subscribers; each is charged in
 * full). Measured 271 bytes (288 on Node 24) for a small event
 * (test/integration/held-costs.test.ts).
 */
const EVENT_ENTRY_BYTES = 384;

/** The empty call table every connection starts with, shared and never written to. */
const NO_CALLS: Map<number, never> = new Map<number, never>();

/** How long a seed connection with a malformed frame waits for the answers it still owes. */
const FAIL_GRACE_MS = 5000;

const utf8 = new TextEncoder();
const utf8Length = (text: string): number => (text.length * 3 <= 255 ? text.length : utf8.encode(text).length);

/** The payload of a call that ended before its params were read. */
const ENDED = new Uint8Array(0);

type Outcome = { ok: true; value: unknown } | { ok: false; error: IpcborError };

/** A call on this connection: seed (answered in order), extended (by id), or a notification (never answered). */
class ServerCall implements IncomingCall {
  done = false;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes charged to the budget for this call (its payload, then its decoded params). */
  cost: number;
  /** Seed framing: the answer, once there is one, waiting for its turn. */
  answer: FrameParts | undefined;
  /** The call's own stream of params, when it has one. */
  input: AsyncQueue<unknown> | undefined;
  /** The params, once decoded. */
  private decoded: { value: unknown } | undefined;

  constructor(
    private readonly conn: ServerConnection,
    readonly kind: 'seed' | 'call' | 'notify',
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
    if (this.decoded) return this.decoded.value;
    const payload = this.payload;
    if (payload === ENDED) throw new IpcborError('IPCBOR_ERR_CANCELLED', 'the call has ended: its params are gone', { method: this.method });
    if (payload === undefined || payload.length === 0) return undefined;
    this.payload = undefined;
    // Kept: the event loop's message.params() may be called more than once.
    this.decoded = { value: this.conn.decodeParams(this, payload) };
    return this.decoded.value;
  }

  reply(value: unknown): void {
    this.conn.complete(this, { ok: true, value });
  }

  fail(error: IpcborError): void {
    this.conn.complete(this, { ok: false, error });
  }
}

export class ServerConnection extends Peer {
  readonly info: { -readonly [K in keyof ConnectionInfo]: ConnectionInfo[K] };
  /** Event names this connection subscribed to; `*` means all (made on first subscribe). */
  private subs: Set<string> | undefined;
  /** Events this connection missed because it read too slowly (sent with the next event). */
  eventsDropped = 0;
  /**
   * Set on a connection the server refuses (too many connections, shutting
   * down): its first request is answered with this error, then it closes.
   */
  refusal: IpcborError | undefined;

  private readonly host: ConnectionHost;
  private readonly opts: ServerConnectionOptions;
  private readonly maxInflight: number;
  private readonly maxMethodBytes: number;
  /** What each call held here costs beyond its payload (the call, and what the executor keeps of it). */
  private readonly callBytes: number;
  /** Seed calls, in request order: their answers leave in this order. */
  private readonly slots: ServerCall[] = [];
  /** Extended calls by id. */
  private calls: Map<number, ServerCall> = NO_CALLS;
  /** Seed calls and notifications running, aborted when the connection goes. */
  private running: Set<ServerCall> | undefined;
  private requests = 0;
  private notifying = 0;
  private eventBacklog: { payload: Uint8Array; name: string; alias: string | undefined }[] = [];
  private eventBytes = 0;
  private shutdownDone: Promise<void> | undefined;
  private failGrace: ReturnType<typeof setTimeout> | undefined;

  constructor(transport: Transport, host: ConnectionHost, info: Omit<ConnectionInfo, 'protocol'>, options: ServerConnectionOptions = {}, budget?: ConnectionBudget, turns?: WriteTurns) {
    const maxMethodBytes = options.maxMethodBytes ?? DEFAULT_MAX_METHOD_BYTES;
    super(transport, 'request', {
      codec: options.codec ?? cbor,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxMethodBytes,
      window: options.window ?? DEFAULT_STREAM_WINDOW,
      budget: budget ?? new ConnectionBudget(options.maxConnectionBytes ?? DEFAULT_MAX_CONNECTION_BYTES),
      frameTimeout: options.frameTimeout ?? DEFAULT_FRAME_TIMEOUT,
      idleTimeout: options.idleTimeout ?? 0,
      side: 'server',
      ...(turns === undefined ? {} : { turns }),
    });
    this.host = host;
    this.opts = options;
    this.maxInflight = options.maxInflight ?? DEFAULT_MAX_INFLIGHT;
    this.maxMethodBytes = maxMethodBytes;
    this.callBytes = CALL_BYTES + (host.executor.heldBytes ?? 0);
    this.info = { ...info, protocol: 'seed' };
  }

  /** Calls running or owed an answer. */
  get inflight(): number {
    return this.slots.length + this.calls.size;
  }

  protected override get quiet(): boolean {
    return this.slots.length === 0 && this.calls.size === 0 && this.notifying === 0;
  }

  /**
   * Seed framing has no other flow control: at `maxInflight` answers owed,
   * or once the connection is closing, reading stops. The extended protocol
   * reads on (CANCEL, CREDIT and stream items are what let calls finish),
   * and refuses calls beyond the limit instead.
   */
  protected override holdsReading(): boolean {
    return this.protocol === 'seed' && (this.slots.length >= this.maxInflight || this.state !== 'open');
  }

  /**
   * Take no new calls, let calls in flight finish and their answers leave,
   * then end the connection. Resolves when it is closed; every caller gets
   * the same promise.
   */
  shutdown(): Promise<void> {
    this.shutdownDone ??= (() => {
      if (this.state === 'open') this.state = 'closing';
      this.updateReading();
      this.endIfIdle();
      return this.closed.then(() => undefined);
    })();
    return this.shutdownDone;
  }

  // ---- seed framing ---------------------------------------------------------

  protected override onSeedRequest(method: string, payload: Uint8Array): void {
    const first = this.requests++ === 0;
    if (this.refusal) {
      // A hello hears the refusal as its answer (docs/PROTOCOL.md §6), a seed call as its error.
      const r = this.refusal;
      this.write(method === HELLO_METHOD && first ? encodeResponse(0, this.codec.encode({ refused: { code: r.code, message: r.message } })) : encodeErrorResponse(r.message));
      this.endTransport();
      return;
    }
    if (method === HELLO_METHOD && first && this.opts.extended !== false) {
      this.answerHello(payload);
      return;
    }
    const call = new ServerCall(this, 'seed', 0, method, this.context(method, undefined), payload, this.callBytes);
    this.budget.charge(call.cost);
    this.slots.push(call);
    if (this.state !== 'open') {
      call.fail(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down', { method }));
      return;
    }
    (this.running ??= new Set()).add(call);
    this.updateReading();
    this.start(call, this.opts.maxTimeout);
  }

  private answerHello(payload: Uint8Array): void {
    let parts: FrameParts;
    try {
      const hello = readHelloRequest(this.codec.decode(payload));
      this.peerMaxFrame = hello.maxFrameBytes;
      this.peerWindow = hello.window;
      const answer: HelloResponse = {
        version: hello.version,
        maxFrameBytes: this.decoder.maxFrameBytes,
        window: this.window,
        maxInflight: this.maxInflight,
        server: this.opts.serverName ?? 'ipcbor',
      };
      parts = encodeResponse(0, this.codec.encode(answer));
      // Everything after the hello request is extended framing.
      this.decoder.mode = 'extended';
      this.protocol = 'extended';
      this.info.protocol = 'extended';
    } catch (err) {
      parts = encodeErrorResponse(clip(messageOf(err)));
    }
    this.write(parts);
  }

  private seedAnswer(outcome: Outcome): FrameParts {
    if (!outcome.ok) return encodeErrorResponse(clip(outcome.error.message));
    if (isAsyncIterable(outcome.value)) {
      // The seed framing has one answer per request: no streams. Close the
      // source so its cleanup runs, and say why.
      discardIterable(outcome.value);
      return encodeErrorResponse('this method answers with a stream, which needs the extended protocol');
    }
    try {
      return encodeResponse(0, this.codec.encode(outcome.value));
    } catch (err) {
      return encodeErrorResponse(clip(`result could not be encoded: ${messageOf(err)}`));
    }
  }

  /** Write the answers that are next in order. */
  private flushSlots(): void {
    const slots = this.slots;
    while (slots.length > 0 && slots[0]!.answer !== undefined) {
      const call = slots.shift()!;
      const answer = call.answer!;
      this.budget.release(answerBytes(answer));
      this.write(answer);
    }
    this.updateReading();
    this.endIfIdle();
  }

  // ---- extended framing -----------------------------------------------------

  protected override onFrame(head: Head, payload: Uint8Array): void {
    switch (head.kind) {
      case Kind.Call:
        return this.onCall(head.id, head.method, head.opts.timeout, head.opts.stream === true, payload);
      case Kind.Notify:
        return this.onNotify(head.method, payload);
      default:
        this.fail(new IpcborError('IPCBOR_ERR_PROTOCOL', `a client may not send frame kind ${head.kind}`));
    }
  }

  protected override onCancel(id: number): void {
    const call = this.calls.get(id);
    if (call) this.finish(call, new IpcborError('IPCBOR_ERR_CANCELLED', 'the caller cancelled the call', { method: call.method }));
  }

  protected override onCallError(_id: number, _err: RemoteError): void {
    // The client's stream of params failed: its reader (the handler) has the error.
  }

  protected override inboundFor(): undefined {
    return undefined;
  }

  private onCall(id: number, method: string, timeout: number | undefined, streamed: boolean, payload: Uint8Array): void {
    if (this.calls.has(id)) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `call id ${id} is already in flight`);
    const refuse = (err: IpcborError) => this.writeError(id, err);
    if (this.state !== 'open') return refuse(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down', { method }));
    if (this.calls.size >= this.maxInflight) return refuse(new IpcborError('IPCBOR_ERR_OVERLOADED', `more than ${this.maxInflight} calls in flight on this connection`, { method }));
    if (utf8Length(method) > this.maxMethodBytes) {
      return refuse(new IpcborError('IPCBOR_ERR_METHOD_TOO_LONG', `method name of ${utf8Length(method)} bytes is over the limit of ${this.maxMethodBytes} bytes`));
    }
    const max = this.opts.maxTimeout;
    const ms = timeout === undefined ? max : max === undefined ? timeout : Math.min(timeout, max);
    const call = new ServerCall(this, 'call', id, method, this.context(method, ms), streamed ? undefined : payload, this.callBytes);
    this.budget.charge(call.cost);
    if (this.calls === NO_CALLS) this.calls = new Map();
    this.calls.set(id, call);
    if (streamed) call.input = this.openInbound(id);
    this.start(call, ms);
  }

  /**
   * A one-way call. Notifications have their own limit (`maxInflight`
   * running at once; beyond it they are dropped and reported to onError),
   * since the client cannot see them finish and so cannot count them.
   */
  private onNotify(method: string, payload: Uint8Array): void {
    if (this.state !== 'open') return;
    if (this.notifying >= this.maxInflight) {
      this.report(new IpcborError('IPCBOR_ERR_OVERLOADED', `notification ${method} dropped: ${this.maxInflight} notifications already running`, { method }));
      return;
    }
    this.notifying++;
    const call = new ServerCall(this, 'notify', 0, method, this.context(method, this.opts.maxTimeout), payload, this.callBytes);
    this.budget.charge(call.cost);
    (this.running ??= new Set()).add(call);
    this.start(call, this.opts.maxTimeout);
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
      this.host.executor(call);
    } catch (err) {
      call.fail(asIpcborError(err, call.method, 'IPCBOR_ERR_HANDLER'));
      return;
    }
    if (!call.done) call.detach();
  }

  /** Decode a call's params, charging what they hold to the budget. */
  decodeParams(call: ServerCall, payload: Uint8Array): unknown {
    try {
      const value = this.decodePayload(payload);
      if (!call.done) {
        const extra = decodedBytes(this.codec);
        call.cost += extra;
        this.budget.charge(extra);
      }
      return value;
    } catch (err) {
      throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `invalid payload: ${messageOf(err)}`, { method: call.method, cause: err });
    }
  }

  /** A call settled (the handler's value or error, a deadline, a refusal): answer it as its framing wants. */
  complete(call: ServerCall, outcome: Outcome): void {
    if (call.done || (call.kind === 'seed' && call.answer !== undefined)) {
      // Cancelled, past its deadline, or the connection went: a stream
      // returned now is read by nobody.
      if (outcome.ok) discardIterable(outcome.value);
      return;
    }
    if (call.kind === 'notify') {
      if (outcome.ok) discardIterable(outcome.value);
      else this.report(outcome.error);
      this.finish(call);
      return;
    }
    if (call.kind === 'seed') {
      const answer = this.seedAnswer(outcome);
      call.answer = answer;
      this.budget.charge(answerBytes(answer));
      this.finish(call, outcome.ok ? undefined : outcome.error);
      this.flushSlots();
      return;
    }
    if (!outcome.ok) {
      this.writeError(call.id, outcome.error);
      this.finish(call, outcome.error);
      return;
    }
    const value = outcome.value;
    if (isAsyncIterable(value)) {
      // The call stays in flight until its stream ends.
      void this.sendStream(call.id, value, call.method).then((end) => this.finish(call, end instanceof IpcborError ? end : undefined));
      return;
    }
    try {
      this.writeValue(Kind.Result, call.id, value, call.method);
    } catch (err) {
      this.writeError(call.id, asIpcborError(err, call.method, 'IPCBOR_ERR_HANDLER'));
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
    this.budget.release(call.cost);
    call.cost = 0;
    if (this.eventBacklog.length > 0) this.onRoom();
    if (call.kind === 'call') {
      this.calls.delete(call.id);
      // Only a streamed call has either stream: most calls make no error here.
      if (call.input) this.closeInbound(call.id, reason ?? new IpcborError('IPCBOR_ERR_CANCELLED', 'the call ended', { method: call.method }), true);
      this.stopOutbound(call.id);
    } else {
      this.running?.delete(call);
      if (call.kind === 'notify') this.notifying--;
    }
    this.endIfIdle();
  }

  protected override onClosed(reason: IpcborError): void {
    // Handlers learn why: the connection closed, or the error it failed with.
    for (const c of [...(this.running ?? []), ...this.calls.values()]) this.finish(c, reason);
    this.slots.length = 0;
    this.eventBacklog = [];
    this.eventBytes = 0;
    if (this.failGrace !== undefined) clearTimeout(this.failGrace);
  }

  private endIfIdle(): void {
    if (this.state === 'closing' && this.quiet) this.endTransport();
  }

  // ---- subscriptions and events ------------------------------------------------

  /** `$ipcbor.subscribe` / `$ipcbor.unsubscribe` {event}: connection state, answered at once. */
  private subscription(call: ServerCall): void {
    const method = call.method;
    if (this.protocol !== 'extended') {
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
    const maxName = this.opts.maxEventNameBytes ?? DEFAULT_MAX_EVENT_NAME_BYTES;
    if (utf8.encode(event).length > maxName) {
      return call.fail(new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `event: name over the limit of ${maxName} bytes`, { method }));
    }
    if (method === UNSUBSCRIBE_METHOD) {
      this.subs?.delete(event);
      return call.reply(null);
    }
    const known = this.host.eventNames();
    if (event !== '*' && known !== undefined && !known.has(event)) {
      return call.fail(new IpcborError('IPCBOR_ERR_UNKNOWN_EVENT', `unknown event: ${event}`, { method }));
    }
    const max = this.opts.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS;
    const subs = (this.subs ??= new Set());
    if (!subs.has(event) && subs.size >= max) {
      return call.fail(new IpcborError('IPCBOR_ERR_OVERLOADED', `more than ${max} subscriptions on this connection`, { method }));
    }
    subs.add(event);
    call.reply(null);
  }

  /** Does this connection want events of this name (by the name or through `*`)? */
  wants(name: string): boolean {
    const subs = this.subs;
    return subs !== undefined && this.state !== 'closed' && (subs.has(name) || subs.has('*'));
  }

  /**
   * Deliver an encoded event. An event is the server's doing, but a
   * subscriber that does not read makes the server hold it: it is written
   * only while the transport takes more and the connection is within its
   * budget (and its share of the server's). Otherwise it waits in a queue
   * bounded by count and bytes, charged to the budget, from which the
   * oldest are dropped past those bounds or while the connection is over
   * its budget (the newest stays: one event past the bound at most). The
   * next event delivered carries the count of those dropped.
   */
  sendEvent(name: string, payload: Uint8Array, alias?: string): void {
    if (this.state === 'closed') return;
    if (payload.length > this.peerMaxFrame) {
      // Larger than this client accepts: dropped, and counted as such.
      this.eventsDropped++;
      return;
    }
    const room = this.eventRoom;
    if (!this.writeBlocked && room) {
      // Those waiting go first, in order.
      if (this.eventBacklog.length > 0) this.onWritable();
      if (!this.writeBlocked && this.eventBacklog.length === 0) return this.writeEvent(name, payload, alias);
    }
    // Held back for want of room: sent when some is released.
    if (!room) this.waitForRoom();
    const maxCount = this.opts.eventQueue ?? DEFAULT_EVENT_QUEUE;
    const maxBytes = this.opts.eventQueueBytes ?? DEFAULT_EVENT_QUEUE_BYTES;
    this.eventBacklog.push({ payload, name, alias });
    this.eventBytes += payload.length;
    this.budget.charge(payload.length + EVENT_ENTRY_BYTES);
    while (this.eventBacklog.length > 1 && (this.eventBacklog.length > maxCount || this.eventBytes > maxBytes || !this.eventRoom)) {
      this.budget.release(this.shiftEvent().payload.length + EVENT_ENTRY_BYTES);
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
    const own = this.unsent + this.eventBytes + this.eventBacklog.length * EVENT_ENTRY_BYTES;
    return own <= this.budget.limit && (this.budget.server === undefined || this.budget.server.allows(own));
  }

  private shiftEvent(): { payload: Uint8Array; name: string; alias: string | undefined } {
    const e = this.eventBacklog.shift()!;
    this.eventBytes -= e.payload.length;
    return e;
  }

  private writeEvent(name: string, payload: Uint8Array, alias: string | undefined): void {
    const dropped = this.eventsDropped;
    const head = alias !== undefined ? [Kind.Event, name, dropped, alias] : dropped > 0 ? [Kind.Event, name, dropped] : [Kind.Event, name];
    this.eventsDropped = 0;
    this.write(encodeExtended(this.codec.encode(head), payload));
  }

  protected override onRoom(): void {
    if (this.eventBacklog.length > 0 && this.eventRoom) this.onWritable();
  }

  protected override onWritable(): void {
    while (this.eventBacklog.length > 0 && !this.writeBlocked && this.state !== 'closed') {
      const e = this.shiftEvent();
      this.budget.release(e.payload.length + EVENT_ENTRY_BYTES);
      this.writeEvent(e.name, e.payload, e.alias);
    }
  }

  // ---- failures -----------------------------------------------------------------

  protected override report(err: IpcborError): void {
    const onError = this.opts.onError;
    if (!onError) return;
    try {
      onError(err, this.info);
    } catch (thrown) {
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }

  /**
   * A frame that cannot be parsed or a broken rule. Extended: every call
   * ends with the error and the connection closes at once (the peer's
   * way). Seed: the answers owed to earlier requests leave first (for at
   * most FAIL_GRACE_MS), then the error's text, then the connection ends.
   */
  override fail(err: IpcborError): void {
    if (this.protocol !== 'seed' || this.state === 'closed') return super.fail(err);
    if (this.failGrace !== undefined) return;
    this.report(err);
    this.state = 'closing';
    // What the broken frame left in the decoder is garbage: let it go now,
    // not when the answers owed have left.
    this.dropInput();
    this.updateReading();
    const last = new ServerCall(this, 'seed', 0, '', this.context('', undefined), undefined, 0);
    last.answer = encodeErrorResponse(clip(err.message));
    last.done = true;
    this.budget.charge(answerBytes(last.answer));
    this.slots.push(last);
    this.failGrace = backgroundTimer(() => this.destroy(err), FAIL_GRACE_MS);
    this.flushSlots();
  }
}

function answerBytes(parts: FrameParts): number {
  return parts[0].length + parts[1].length;
}
