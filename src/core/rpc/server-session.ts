/**
 * One server-side connection: decodes frames, dispatches calls, writes
 * answers. It speaks the seed framing until the client opens the extended
 * protocol with a hello (see protocol.ts), and never does I/O itself: bytes
 * come in through `receive` and leave through the Transport.
 *
 * Seed framing has no request id, so seed calls run concurrently but their
 * answers leave in request order (a FIFO of slots). Extended calls carry
 * ids and are answered as soon as they finish.
 */
import { cbor, type Codec } from '../codec/cbor.js';
import {
  DEFAULT_EVENT_QUEUE,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_INFLIGHT,
  DEFAULT_MAX_METHOD_BYTES,
  DEFAULT_STREAM_WINDOW,
  MAX_TIMER_MS,
} from '../constants.js';
import { IpcborError, messageOf } from '../errors.js';
import { FrameDecoder } from '../frame/decoder.js';
import { encodeErrorResponse, encodeExtended, encodeResponse, type FrameParts } from '../frame/encoder.js';
import type { CallContext, Dispatcher } from './dispatcher.js';
import { encodeKindIdHeader } from './heads.js';
import { HELLO_METHOD, Kind, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD, acceptHello, decodeHead, type Head, type HelloResponse } from './protocol.js';
import { Context, clip, discardIterable, isThenable, toIpcborError, type Outcome } from './call.js';
import { InboundStream, addCredit, createOutbound, isAsyncIterable, pumpStream, stopOutbound, type OutboundStream } from './streams.js';
import type { ConnectionInfo, Transport } from './transport.js';

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
}

export interface ServerSessionOptions extends ServerLimits {
  codec?: Codec;
  /** Answer the hello and speak the extended protocol (default true). */
  extended?: boolean;
  /** Free text sent in the hello answer. */
  serverName?: string;
  /** Called with failures nobody else hears of (a notification's handler threw, a protocol violation). */
  onError?: (err: unknown, connection: ConnectionInfo) => void;
}

interface SeedSlot {
  parts: FrameParts | undefined;
}

interface ServerCall {
  readonly id: number;
  ctx: Context | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  input: InboundStream | undefined;
  output: OutboundStream | undefined;
  done: boolean;
}


const PAUSE_INFLIGHT = 1;
const PAUSE_WRITE = 2;
const PAUSE_STOPPED = 4;

const setTimer = globalThis.setTimeout;
const clearTimer = globalThis.clearTimeout;

/** How long a connection with a malformed frame waits for the answers it still owes (seed framing). */
const FAIL_GRACE_MS = 5000;

const utf8 = new TextEncoder();
const utf8Length = (text: string): number => utf8.encode(text).length;

export class ServerSession {
  readonly info: { -readonly [K in keyof ConnectionInfo]: ConnectionInfo[K] };
  /** Event names this connection subscribed to; `*` means all. */
  readonly subscriptions = new Set<string>();

  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  private readonly codec: Codec;
  private readonly decoder: FrameDecoder;
  /**
   * Contexts of seed calls and notifications in flight, aborted when the
   * connection goes. (A set here rather than listeners on one connection
   * signal, which would pile up one listener per call.)
   */
  private readonly live = new Set<Context>();
  private readonly options: ServerSessionOptions;
  private readonly maxInflight: number;
  private readonly window: number;
  private mode: 'seed' | 'extended' = 'seed';
  private requests = 0;
  private inflight = 0;
  private pauses = 0;
  private ending = false;
  private dead = false;
  private readonly slots: SeedSlot[] = [];
  private readonly calls = new Map<number, ServerCall>();
  private peerMaxFrame = Infinity;
  private peerWindow = DEFAULT_STREAM_WINDOW;
  private drainWaiters: (() => void)[] = [];
  private eventBacklog: [name: string, payload: Uint8Array, alias: string | undefined][] = [];
  private eventsDropped = 0;
  private onIdle: (() => void) | undefined;
  /** A malformed frame arrived: nothing more is read. */
  private failed = false;
  /** Notifications running (they have no slot and no id). */
  private notifying = 0;

  constructor(transport: Transport, dispatcher: Dispatcher, info: Omit<ConnectionInfo, 'protocol'>, options: ServerSessionOptions = {}) {
    this.transport = transport;
    this.dispatcher = dispatcher;
    this.options = options;
    this.codec = options.codec ?? cbor;
    this.maxInflight = options.maxInflight ?? DEFAULT_MAX_INFLIGHT;
    this.window = options.window ?? DEFAULT_STREAM_WINDOW;
    this.info = { ...info, protocol: 'seed' };
    this.decoder = new FrameDecoder(
      'request',
      {
        request: (method, payload) => this.onSeedRequest(method, payload),
        extended: (head, payload) => this.onExtended(head, payload),
      },
      { maxMethodBytes: options.maxMethodBytes ?? DEFAULT_MAX_METHOD_BYTES, maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES },
    );
  }

  // ---- input from the transport -------------------------------------------

  receive(chunk: Uint8Array): void {
    if (this.dead || this.failed) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.failConnection(toIpcborError(err));
    }
  }

  /** The transport can take more after `write` returned false. */
  drained(): void {
    this.unpause(PAUSE_WRITE);
    this.flushEvents();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** The transport closed (peer gone, or we ended it). Every running handler's signal aborts. */
  closed(cause?: unknown): void {
    if (this.dead) return;
    this.dead = true;
    const reason = new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection closed', { cause });
    for (const c of this.live) c.abort(reason);
    this.live.clear();
    for (const call of this.calls.values()) this.finish(call, reason);
    this.slots.length = 0;
    this.eventBacklog = [];
    this.drained();
    this.onIdle?.();
  }

  /**
   * Take no new calls, let calls in flight finish and their answers leave,
   * then end the connection. Resolves when it is closed. A seed connection
   * stops reading; an extended one reads on, because CANCEL, CREDIT and
   * stream items are what let its calls finish (new CALLs are refused with
   * IPCBOR_ERR_SHUTTING_DOWN).
   */
  shutdown(): Promise<void> {
    if (this.mode === 'seed') this.pause(PAUSE_STOPPED);
    this.ending = true;
    if (this.dead) return Promise.resolve();
    const done = new Promise<void>((resolve) => (this.onIdle = resolve));
    this.endIfIdle();
    return done;
  }

  /** Close at once; running handlers see their signal abort. */
  destroy(): void {
    this.transport.destroy();
    this.closed();
  }

  // ---- seed framing ---------------------------------------------------------

  private onSeedRequest(method: string, payload: Uint8Array): void {
    const first = this.requests++ === 0;
    if (method === HELLO_METHOD && first && this.options.extended !== false) {
      this.answerHello(payload);
      return;
    }
    if (this.ending) {
      this.slots.push({ parts: encodeErrorResponse('the server is shutting down') });
      this.flushSlots();
      return;
    }
    const slot: SeedSlot = { parts: undefined };
    this.slots.push(slot);
    // Answers leave in order, so a finished answer waits behind a slow one:
    // count answers owed, not handlers running, against the limit.
    if (this.slots.length >= this.maxInflight) this.pause(PAUSE_INFLIGHT);
    this.began();
    const max = this.options.maxTimeout;
    const ctx = new Context(method, this.info, max === undefined ? undefined : Date.now() + max);
    this.live.add(ctx);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answer = (parts: FrameParts) => {
      if (slot.parts !== undefined) return;
      if (timer !== undefined) clearTimer(timer);
      this.live.delete(ctx);
      slot.parts = parts;
      this.ended();
      this.flushSlots();
    };
    if (max !== undefined && max <= MAX_TIMER_MS) {
      timer = setTimer(() => {
        const err = new IpcborError('IPCBOR_ERR_DEADLINE_EXCEEDED', `deadline of ${max} ms exceeded`, { method });
        ctx.abort(err);
        answer(encodeErrorResponse(err.message));
      }, max);
    }
    this.run(method, payload, ctx, (outcome) => {
      if (slot.parts !== undefined) {
        if (outcome.ok) discardIterable(outcome.value);
        return;
      }
      answer(this.seedFrame(outcome));
    });
  }

  private answerHello(payload: Uint8Array): void {
    let parts: FrameParts;
    try {
      const hello = acceptHello(this.codec.decode(payload));
      this.peerMaxFrame = hello.maxFrameBytes;
      this.peerWindow = hello.window;
      const answer: HelloResponse = {
        version: hello.version,
        maxFrameBytes: this.decoder.maxFrameBytes,
        window: this.window,
        maxInflight: this.maxInflight,
        server: this.options.serverName ?? 'ipcbor',
      };
      parts = encodeResponse(0, this.codec.encode(answer));
      // Everything after the hello request is extended framing.
      this.decoder.mode = 'extended';
      this.mode = 'extended';
      this.info.protocol = 'extended';
    } catch (err) {
      parts = encodeErrorResponse(messageOf(err));
    }
    this.write(parts);
  }

  private seedFrame(outcome: Outcome): FrameParts {
    if (!outcome.ok) return encodeErrorResponse(clip(outcome.error.message));
    if (isAsyncIterable(outcome.value) && !(outcome.value instanceof Uint8Array)) {
      // The seed framing has one answer per request: no streams. Close the
      // source so its cleanup runs, and say why.
      discardIterable(outcome.value);
      return encodeErrorResponse('this method answers with a stream, which needs the extended protocol');
    }
    try {
      return encodeResponse(0, this.codec.encode(outcome.value));
    } catch (err) {
      return encodeErrorResponse(`result could not be encoded: ${messageOf(err)}`);
    }
  }

  private flushSlots(): void {
    const slots = this.slots;
    while (slots.length > 0 && slots[0]!.parts !== undefined) {
      this.write(slots.shift()!.parts!);
    }
    if (slots.length < this.maxInflight) this.unpause(PAUSE_INFLIGHT);
    this.endIfIdle();
  }

  // ---- calls ------------------------------------------------------------------

  /**
   * Run a call and hand its outcome to `done`: at once when the handler
   * returns a plain value (no promise, no extra microtask), or when its
   * promise settles.
   */
  private run(method: string, payload: Uint8Array | InboundStream, ctx: CallContext, done: (outcome: Outcome) => void): void {
    if (method === SUBSCRIBE_METHOD || method === UNSUBSCRIBE_METHOD) return done(this.subscription(method, payload));
    const entry = this.dispatcher.lookup(method);
    if (entry === undefined) {
      return done({ ok: false, error: new IpcborError('IPCBOR_ERR_UNKNOWN_METHOD', `unknown method: ${method}`, { method }) });
    }
    let params: unknown;
    if (payload instanceof InboundStream) {
      params = payload;
    } else {
      try {
        params = payload.length === 0 ? undefined : this.codec.decode(payload);
      } catch (err) {
        return done({ ok: false, error: new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `invalid payload: ${messageOf(err)}`, { method, cause: err }) });
      }
    }
    let value: unknown;
    try {
      value = entry.invoke(params, ctx);
    } catch (err) {
      return done({ ok: false, error: toIpcborError(err, method) });
    }
    if (isThenable(value)) {
      value.then(
        (v) => done({ ok: true, value: v }),
        (err: unknown) => done({ ok: false, error: toIpcborError(err, method) }),
      );
    } else {
      done({ ok: true, value });
    }
  }

  /** `$ipcbor.subscribe` / `$ipcbor.unsubscribe` {event}: connection state, not a handler. */
  private subscription(method: string, payload: Uint8Array | InboundStream): Outcome {
    if (this.mode !== 'extended') {
      return { ok: false, error: new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol', { method }) };
    }
    let event: unknown;
    try {
      event = payload instanceof InboundStream ? undefined : (this.codec.decode(payload) as { event?: unknown } | null)?.event;
    } catch {
      event = undefined;
    }
    if (typeof event !== 'string' || event === '') {
      return { ok: false, error: new IpcborError('IPCBOR_ERR_INVALID_PARAMS', 'event: expected a non-empty event name (or "*")', { method }) };
    }
    if (method === SUBSCRIBE_METHOD) this.subscriptions.add(event);
    else this.subscriptions.delete(event);
    return { ok: true, value: null };
  }

  /**
   * Calls running or owed an answer. The seed framing has no other flow
   * control, so there the server stops reading at the limit (see
   * onSeedRequest). The extended protocol must keep reading (CANCEL, CREDIT
   * and stream items free the calls in flight): the limit is announced in
   * the hello and calls beyond it are refused (see onCall).
   */
  private began(): void {
    this.inflight++;
  }

  private ended(): void {
    this.inflight--;
  }

  // ---- extended framing -----------------------------------------------------

  private onExtended(headBytes: Uint8Array, payload: Uint8Array): void {
    let head: Head;
    try {
      head = decodeHead(this.codec, headBytes);
    } catch (err) {
      this.failConnection(toIpcborError(err));
      return;
    }
    switch (head.kind) {
      case Kind.Call:
        return this.onCall(head.id, head.method, head.opts.timeout, head.opts.stream === true, payload);
      case Kind.Notify:
        return this.onNotify(head.method, payload);
      case Kind.Cancel: {
        const call = this.calls.get(head.id);
        if (call) this.finish(call, new IpcborError('IPCBOR_ERR_CANCELLED', 'the caller cancelled the call'));
        return;
      }
      case Kind.Item:
      case Kind.End:
      case Kind.Error:
        return this.onInput(head, payload);
      case Kind.Credit: {
        const out = this.calls.get(head.id)?.output;
        if (out) addCredit(out, head.n);
        return;
      }
      default:
        this.failConnection(new IpcborError('IPCBOR_ERR_PROTOCOL', `a client may not send frame kind ${head.kind}`));
    }
  }

  /**
   * A one-way call. Notifications have their own limit (`maxInflight`
   * running at once; beyond it they are dropped and reported to onError),
   * since the client cannot see them finish and so cannot count them.
   */
  private onNotify(method: string, payload: Uint8Array): void {
    if (this.ending) return;
    if (this.notifying >= this.maxInflight) {
      this.report(new IpcborError('IPCBOR_ERR_OVERLOADED', `notification ${method} dropped: ${this.maxInflight} notifications already running`, { method }));
      return;
    }
    this.notifying++;
    const max = this.options.maxTimeout;
    const ctx = new Context(method, this.info, max === undefined ? undefined : Date.now() + max);
    this.live.add(ctx);
    const timer =
      max !== undefined && max <= MAX_TIMER_MS
        ? setTimer(() => ctx.abort(new IpcborError('IPCBOR_ERR_DEADLINE_EXCEEDED', `deadline of ${max} ms exceeded`, { method })), max)
        : undefined;
    this.run(method, payload, ctx, (outcome) => {
      if (timer !== undefined) clearTimer(timer);
      this.live.delete(ctx);
      this.notifying--;
      this.endIfIdle();
      if (outcome.ok) discardIterable(outcome.value);
      else this.report(outcome.error);
    });
  }

  /** Tell the server's onError; a throwing onError must not break the connection. */
  private report(err: unknown): void {
    const onError = this.options.onError;
    if (!onError) return;
    try {
      onError(err, this.info);
    } catch (thrown) {
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }

  private onCall(id: number, method: string, timeout: number | undefined, streamed: boolean, payload: Uint8Array): void {
    if (this.calls.has(id)) {
      this.failConnection(new IpcborError('IPCBOR_ERR_PROTOCOL', `call id ${id} is already in flight`));
      return;
    }
    if (this.ending) {
      this.sendError(id, new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down', { method }));
      return;
    }
    if (this.inflight >= this.maxInflight) {
      this.sendError(id, new IpcborError('IPCBOR_ERR_OVERLOADED', `more than ${this.maxInflight} calls in flight on this connection`, { method }));
      return;
    }
    if (method.length > this.decoder.maxMethodBytes / 3 && utf8Length(method) > this.decoder.maxMethodBytes) {
      this.sendError(id, new IpcborError('IPCBOR_ERR_METHOD_TOO_LONG', `method name of ${utf8Length(method)} bytes is over the limit of ${this.decoder.maxMethodBytes} bytes`));
      return;
    }
    const call: ServerCall = { id, ctx: undefined, timer: undefined, input: undefined, output: undefined, done: false };
    this.calls.set(id, call);
    this.began();

    const max = this.options.maxTimeout;
    // A deadline beyond what a timer can wait is no deadline.
    const asked = timeout !== undefined && timeout <= MAX_TIMER_MS ? timeout : undefined;
    const ms = asked === undefined ? max : max === undefined ? asked : Math.min(asked, max);
    let deadline: number | undefined;
    if (ms !== undefined && ms <= MAX_TIMER_MS) {
      deadline = Date.now() + ms;
      call.timer = setTimer(() => {
        const err = new IpcborError('IPCBOR_ERR_DEADLINE_EXCEEDED', `deadline of ${ms} ms exceeded`, { method });
        this.sendError(id, err);
        this.finish(call, err);
      }, ms);
    }
    if (streamed) {
      call.input = new InboundStream(this.window, {
        grant: (n) => this.writeHead([Kind.Credit, id, n]),
        cancel: () => this.writeHead([Kind.Cancel, id]),
      });
    }
    const ctx = new Context(method, this.info, deadline);
    call.ctx = ctx;
    this.run(method, call.input ?? payload, ctx, (outcome) => this.complete(call, method, outcome));
  }

  private onInput(head: Head & { id: number }, payload: Uint8Array): void {
    if (head.kind === Kind.Error && head.id === 0) {
      // The client reports a connection-level failure and will close.
      this.report(new IpcborError(head.code, head.message));
      return;
    }
    const input = this.calls.get(head.id)?.input;
    if (!input) return; // late frame of a finished call
    if (head.kind === Kind.End) {
      input.end();
    } else if (head.kind === Kind.Error) {
      input.fail(new IpcborError(head.code, head.message));
    } else {
      let item: unknown;
      try {
        item = this.codec.decode(payload);
      } catch (err) {
        input.fail(toIpcborError(err));
        return;
      }
      if (!input.push(item)) this.failConnection(new IpcborError('IPCBOR_ERR_PROTOCOL', `stream ${head.id} sent more items than its credit`));
    }
  }

  private complete(call: ServerCall, method: string, outcome: Outcome): void {
    if (call.done) {
      // Cancelled, past its deadline, or the connection went: a stream
      // returned now is read by nobody.
      if (outcome.ok) discardIterable(outcome.value);
      return;
    }
    if (!outcome.ok) {
      this.sendError(call.id, outcome.error);
      this.finish(call);
      return;
    }
    const value = outcome.value;
    if (isAsyncIterable(value) && !(value instanceof Uint8Array)) {
      const out = createOutbound(this.peerWindow);
      call.output = out;
      const id = call.id;
      void pumpStream(value, out, {
        item: (v) => this.sendPayload(Kind.Item, id, v, method),
        end: () => {
          this.writeHead([Kind.End, id]);
          this.finish(call);
        },
        error: (err) => {
          this.sendError(id, toIpcborError(err, method));
          this.finish(call);
        },
        writable: () => this.whenWritable(),
      }).finally(() => this.finish(call));
      return;
    }
    try {
      this.sendPayload(Kind.Result, call.id, value, method);
    } catch (err) {
      this.sendError(call.id, toIpcborError(err, method));
    }
    this.finish(call);
  }

  /** Send RESULT or ITEM; a value that cannot be sent becomes an ERROR for the call. */
  private sendPayload(kind: number, id: number, value: unknown, method: string): void {
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(value);
    } catch (err) {
      throw new IpcborError('IPCBOR_ERR_ENCODE', `result could not be encoded: ${messageOf(err)}`, { method, cause: err });
    }
    if (bytes.length > this.peerMaxFrame) {
      throw new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `result of ${bytes.length} bytes is over the client's limit of ${this.peerMaxFrame} bytes`, { method });
    }
    this.write([encodeKindIdHeader(kind, id, bytes.length), bytes]);
  }

  private finish(call: ServerCall, reason?: IpcborError): void {
    if (call.done) return;
    call.done = true;
    this.calls.delete(call.id);
    if (call.timer !== undefined) clearTimer(call.timer);
    if (reason) call.ctx?.abort(reason);
    call.input?.fail(reason ?? new IpcborError('IPCBOR_ERR_CANCELLED', 'the call ended'));
    if (call.output) stopOutbound(call.output);
    this.ended();
    this.endIfIdle();
  }

  private sendError(id: number, err: IpcborError): void {
    let data: Uint8Array | undefined;
    if (err.data !== undefined) {
      try {
        data = this.codec.encode(err.data);
        if (data.length > this.peerMaxFrame) data = undefined;
      } catch {
        data = undefined;
      }
    }
    // Clipped: a head must stay under the peer's 64 KiB head limit, or the
    // peer would have to drop the whole connection for one long message.
    this.write(encodeExtended(this.codec.encode([Kind.Error, id, clip(String(err.code), 256), clip(err.message)]), data));
  }

  private writeHead(head: unknown[]): void {
    this.write(encodeExtended(this.codec.encode(head)));
  }

  // ---- events ---------------------------------------------------------------

  /** Does this connection want events of this name (by the name or through `*`)? */
  wants(name: string): boolean {
    return this.mode === 'extended' && !this.dead && (this.subscriptions.has(name) || this.subscriptions.has('*'));
  }

  /**
   * Deliver an encoded event. While the transport is backed up, events wait
   * in a bounded queue; when it is full the oldest is dropped and the next
   * event delivered carries the count of those dropped.
   */
  sendEvent(name: string, payload: Uint8Array, alias?: string): void {
    if (this.dead) return;
    if (payload.length > this.peerMaxFrame) {
      // Larger than this client accepts: dropped, and counted as such.
      this.eventsDropped++;
      return;
    }
    if (this.pauses & PAUSE_WRITE || this.eventBacklog.length > 0) {
      if (this.eventBacklog.length >= (this.options.eventQueue ?? DEFAULT_EVENT_QUEUE)) {
        this.eventBacklog.shift();
        this.eventsDropped++;
      }
      this.eventBacklog.push([name, payload, alias]);
      return;
    }
    this.writeEvent(name, payload, alias);
  }

  private writeEvent(name: string, payload: Uint8Array, alias: string | undefined): void {
    const dropped = this.eventsDropped;
    const head = alias !== undefined ? [Kind.Event, name, dropped, alias] : dropped > 0 ? [Kind.Event, name, dropped] : [Kind.Event, name];
    this.eventsDropped = 0;
    this.write(encodeExtended(this.codec.encode(head), payload));
  }

  private flushEvents(): void {
    while (this.eventBacklog.length > 0 && !(this.pauses & PAUSE_WRITE) && !this.dead) {
      const [name, payload, alias] = this.eventBacklog.shift()!;
      this.writeEvent(name, payload, alias);
    }
  }

  // ---- writing and flow control ---------------------------------------------

  private write(parts: FrameParts): void {
    if (this.dead) return;
    if (!this.transport.write(parts)) this.pause(PAUSE_WRITE);
  }

  private whenWritable(): Promise<void> | undefined {
    if (!(this.pauses & PAUSE_WRITE) || this.dead) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Stop reading the socket and stop delivering frames already read (they wait in the decoder). */
  private pause(bit: number): void {
    if (this.pauses === 0) {
      this.transport.pause();
      this.decoder.hold();
    }
    this.pauses |= bit;
  }

  private unpause(bit: number): void {
    if (!(this.pauses & bit)) return;
    this.pauses &= ~bit;
    if (this.pauses !== 0 || this.dead || this.failed) return;
    this.transport.resume();
    try {
      this.decoder.release();
    } catch (err) {
      this.failConnection(toIpcborError(err));
    }
  }

  private endIfIdle(): void {
    if (this.ending && this.inflight === 0 && this.notifying === 0 && this.slots.length === 0 && !this.dead) {
      this.transport.end();
    }
  }

  /**
   * A frame that cannot be parsed or a broken protocol rule: answer with a
   * clear error where the peer can still read one, then close this
   * connection only. Seed framing: the answers owed to earlier requests
   * leave first (for at most FAIL_GRACE_MS). Extended: every call in flight
   * ends with the error and the connection closes at once.
   */
  private failConnection(err: IpcborError): void {
    if (this.failed || this.dead) return;
    this.failed = true;
    this.report(err);
    this.pause(PAUSE_STOPPED);
    this.ending = true;
    if (this.mode === 'seed') {
      this.slots.push({ parts: encodeErrorResponse(clip(err.message)) });
      this.flushSlots();
      const grace = setTimer(() => this.destroy(), FAIL_GRACE_MS);
      (grace as { unref?: () => void }).unref?.();
    } else {
      this.sendError(0, err);
      for (const call of this.calls.values()) this.finish(call, err);
      this.transport.end();
    }
  }
}
