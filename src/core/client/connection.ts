/**
 * The client's end of one connection, a role of the peer: it sends calls,
 * matches answers to them (the base framing by order, the extended
 * protocol by id), registers subscriptions with the server and hands its
 * events on, and settles every call it sent at once when the connection
 * goes. What outlives one connection (the calls waiting for one, the
 * subscriptions, reconnecting) is the client's (client.ts).
 */
import { IdTable } from '../peer/id-table.js';
import { kept } from '../codec/encode.js';
import { IpcborError, RemoteError, asIpcborError, messageOf } from '../errors.js';
import { encodeRequest } from '../frame/encoder.js';
import { ConnectionBudget } from '../peer/budget.js';
import { Peer } from '../peer/peer.js';
import type { PeerRole } from '../peer/role.js';
import { discardIterable as discard } from '../peer/streams.js';
import { callFrame, cancelHead, HELLO_METHOD, Kind, notifyFrame, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD, type CallOptions, type Head } from '../protocol/heads.js';
import { helloOffer, readHelloResponse, type HelloResponse } from '../protocol/hello.js';
import type { Transport } from '../transport.js';
import { EncodedParams, OutgoingCall } from './outgoing.js';
import type { SubscriptionSet } from './subscription.js';
import type { ResolvedClientOptions } from './options.js';

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Loose = new TextDecoder();
/** A base-framing peer's refusal of the hello is a short text; anything else is not a base-framing peer talking. */
const MAX_BASE_REFUSAL = 4096;
const noop = (): void => {};

/** What answers a base-framing request: a call, or the hello (which reads the raw answer), or a notification (dropped). */
type Answered = OutgoingCall | ((ret: number, body: Uint8Array) => void);

export class ClientConnection implements PeerRole {
  /** The connection's peer: framing, phase, flow, timers, streams. */
  readonly peer: Peer;
  /** What the server said in its hello answer (extended protocol only). */
  serverInfo: HelloResponse | undefined;
  /** Events the server dropped for this connection because it read too slowly. */
  droppedEvents = 0;

  private readonly opts: ResolvedClientOptions;
  private readonly subs: SubscriptionSet;
  /** Base framing: what each request sent is waiting for, in order. */
  private readonly fifo: Answered[] = [];
  /** Extended protocol: calls sent, by id. */
  private readonly pending = new IdTable<OutgoingCall>();
  /** Calls waiting for a free server slot (the server's maxInflight). */
  private queue: OutgoingCall[] = [];
  private peerMaxInflight = Infinity;
  private nextId = 0;
  /** The ids went past 2^32 - 1 once: from then on a candidate may still be in use. */
  private wrapped = false;
  private readonly methodCache = new Map<string, Uint8Array>();
  private lastMethod: string | undefined;
  private lastMethodBytes: Uint8Array = EMPTY;
  /** Event names registered with the server on this connection. */
  private readonly registered = new Map<string, Promise<unknown>>();
  /** Calls sent on this connection and not yet settled. */
  private unsettled = 0;
  private idleWaiters: (() => void)[] = [];
  /** `eventOverflow: 'pause'`: a full subscription holds reading. */
  private readonly pauses: boolean;

  constructor(transport: Transport, options: ResolvedClientOptions, subs: SubscriptionSet) {
    this.peer = new Peer(transport, this, options.config, new ConnectionBudget(options.maxConnectionBytes));
    this.opts = options;
    this.subs = subs;
    this.pauses = options.eventOverflow === 'pause';
    if (options.eventOverflow === 'pause') subs.onRoom = () => this.peer.flow.update();
  }

  get state(): 'open' | 'closing' | 'closed' {
    const stage = this.peer.phase.stage;
    return stage === 'open' ? 'open' : stage === 'closed' ? 'closed' : 'closing';
  }

  get protocol(): 'base' | 'extended' {
    return this.peer.protocol;
  }

  get reason(): IpcborError | undefined {
    return this.peer.reason;
  }

  get closed(): Promise<IpcborError> {
    return this.peer.closed;
  }

  /** Calls sent here and not yet settled (a result stream counts until it resolves). */
  get inflight(): number {
    return this.unsettled;
  }

  /** @internal */
  get quiet(): boolean {
    return this.unsettled === 0 && this.pending.size === 0 && this.queue.length === 0;
  }

  /** Resolves when no call is waiting for its answer and no result stream is open (or the connection closed). */
  idle(): Promise<void> {
    if (this.quiet || this.peer.phase.stage === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !(this.quiet || this.peer.phase.stage === 'closed')) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Close at once (also a connection already settled that still holds its socket). */
  destroy(cause?: IpcborError): void {
    this.peer.destroy(cause);
  }

  /** Close gracefully: what was written is flushed; the transport is cut if the server does not close its side in turn. */
  end(): void {
    this.peer.beginClosing('end');
  }

  // ---- negotiation ----------------------------------------------------------

  /**
   * Offer the extended protocol. Resolves `extended` when the server
   * accepts, `base` when it answers as a base-framing peer does (an error with a
   * short text). Rejects when the answer is neither (the connection is
   * failed: never a silent fall back), or when the connection closes first.
   */
  hello(): Promise<'base' | 'extended'> {
    return new Promise((resolve, reject) => {
      const answered = (ret: number, body: Uint8Array) => {
        this.helloFailed = undefined;
        try {
          if (ret !== 0) {
            if (body.length > MAX_BASE_REFUSAL) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `the server refused the hello with ${body.length} bytes of text`);
            utf8Strict.decode(body);
            resolve('base');
            return;
          }
          const answer = readHelloResponse(this.peer.codec.decode(body));
          this.serverInfo = answer;
          if (answer.maxInflight !== undefined) this.peerMaxInflight = answer.maxInflight;
          // Everything after the hello answer is extended framing.
          this.peer.enterExtended(answer);
          resolve('extended');
        } catch (err) {
          const e = asIpcborError(err, { context: "the server's hello answer is not valid" });
          reject(e);
          this.peer.destroy(e);
        }
      };
      this.helloFailed = (reason) => reject(reason.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? this.closedError(HELLO_METHOD) : reason);
      this.fifo.push(answered);
      this.peer.write(encodeRequest(HELLO_METHOD, this.peer.codec.encode(helloOffer(this.peer.decoder.maxFrameBytes, this.peer.window))));
    });
  }

  /** The hello waits for its answer: what it hears if the connection closes first. */
  private helloFailed: ((reason: IpcborError) => void) | undefined;

  // ---- calls ----------------------------------------------------------------

  /**
   * Send `call` here. It settles through this connection from now on: its
   * answer, its error, or the connection closing. A call this connection
   * cannot send (closed, a streamed call on the base framing, params that
   * cannot be encoded) settles at once with why.
   */
  send(call: OutgoingCall): void {
    const method = call.method;
    if (this.peer.phase.stage !== 'open') return call.finish(undefined, this.closedError(method));
    const params = call.params;
    const streamed = call.source !== undefined;
    if (streamed && this.peer.protocol === 'base') {
      discard(params);
      return call.finish(undefined, new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'streaming params need the extended protocol, which this server does not speak', { method }));
    }
    let payload: Uint8Array;
    try {
      payload = streamed ? EMPTY : params instanceof EncodedParams ? params.bytes : this.peer.codec.encode(params);
      this.peer.checkOutgoing(payload.length, 'params', method);
    } catch (err) {
      if (streamed) discard(params);
      return call.finish(undefined, err);
    }
    call.conn = this;
    this.unsettled++;
    if (this.peer.protocol === 'base') {
      this.fifo.push(call);
      this.peer.write(encodeRequest(this.methodBytes(method), payload));
      return;
    }
    call.payload = payload;
    // The server takes at most `maxInflight` calls per connection; the
    // rest wait here, in the caller's own process, for a free slot.
    if (this.pending.size < this.peerMaxInflight) {
      this.writeCall(call);
    } else {
      // It may wait long: its params not as a view that keeps a shared slab alive.
      call.payload = kept(payload);
      call.markWaiting();
      this.queue.push(call);
    }
  }

  private writeCall(call: OutgoingCall): void {
    const id = this.allocId();
    call.id = id;
    this.pending.set(id, call);
    const timeout = call.remaining();
    let opts: CallOptions | undefined;
    if (timeout !== undefined || call.source !== undefined) {
      opts = {};
      if (timeout !== undefined) opts.timeout = timeout;
      if (call.source !== undefined) opts.stream = true;
    }
    const payload = call.payload ?? EMPTY;
    call.payload = undefined;
    this.peer.write(callFrame(this.peer.codec, id, this.methodBytes(call.method), call.method, opts, payload));
    if (call.source) void this.peer.streams.send(id, call.source, call.method);
  }

  /** Send queued calls while the server has free slots. */
  private sendQueued(): void {
    while (this.queue.length > 0 && this.pending.size < this.peerMaxInflight && this.peer.phase.stage === 'open') {
      const next = this.queue.shift()!;
      if (!next.settled) this.writeCall(next);
    }
  }

  /** A one-way call: no answer comes back. Base-framing peers get a normal call whose answer is dropped. */
  notify(method: string, params: unknown): void {
    if (this.peer.phase.stage !== 'open') throw this.closedError(method);
    const payload = this.peer.codec.encode(params);
    this.peer.checkOutgoing(payload.length, 'params', method);
    if (this.peer.protocol === 'extended') {
      this.peer.write(notifyFrame(this.peer.codec, method, payload));
    } else {
      this.fifo.push(noop);
      this.peer.write(encodeRequest(this.methodBytes(method), payload));
    }
  }

  private allocId(): number {
    // Until the ids wrap around, the next one is free: no lookup per call.
    if (this.nextId < 0xffffffff && !this.wrapped) return ++this.nextId;
    this.wrapped = true;
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private methodBytes(method: string): Uint8Array {
    // Most callers call one method over and over.
    if (method === this.lastMethod) return this.lastMethodBytes;
    let bytes = this.methodCache.get(method);
    if (bytes === undefined) {
      bytes = utf8.encode(method);
      if (this.methodCache.size < 1024) this.methodCache.set(method, bytes);
    }
    this.lastMethod = method;
    this.lastMethodBytes = bytes;
    return bytes;
  }

  /** The caller gave up on `call` (timeout, abort): settle now, tell the server (extended), drop the answer when it comes. */
  abandon(call: OutgoingCall, err: IpcborError): void {
    if (call.settled && !call.stream) return;
    if (this.pending.get(call.id) === call) {
      // A reader that stopped its result stream has already said CANCEL.
      if (!call.stream?.done) this.peer.writeHead(cancelHead(call.id));
      // Items of its result stream nobody will read: let them go now.
      this.peer.endStreams(call.id, err, true);
    } else if (call.id === 0) {
      // Never sent: nothing to cancel on the server; close a streamed source.
      const i = this.queue.indexOf(call);
      if (i >= 0) {
        this.queue.splice(i, 1);
        if (call.source) discard(call.source);
      }
    }
    this.settle(call, undefined, err);
  }

  /** Settle a call once: resolve with `value` or reject with `err`; release its id and streams when it is over. */
  private settle(call: OutgoingCall, value: unknown, err?: unknown): void {
    const streaming = call.stream !== undefined && !call.stream.done;
    if (err !== undefined || !streaming) {
      if (call.id !== 0 && this.pending.get(call.id) === call) {
        this.pending.delete(call.id);
        this.peer.endStreams(call.id, err as IpcborError | undefined);
        if (this.queue.length > 0) this.sendQueued();
      }
      if (!call.over) {
        call.over = true;
        this.unsettled--;
      }
    }
    // Resolved with its stream, the call is still running: its timer runs on.
    call.finish(value, err, streaming && err === undefined);
    this.checkIdle();
  }

  // ---- events ---------------------------------------------------------------

  /**
   * Register event `name` with the server on this connection (once per
   * name). Resolves once the server registered it; a refusal, a timeout or
   * the connection closing rejects.
   */
  register(name: string): Promise<void> {
    if (this.peer.protocol !== 'extended') {
      return Promise.reject(new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this server does not speak'));
    }
    if (this.peer.phase.stage !== 'open') return Promise.reject(this.closedError(SUBSCRIBE_METHOD));
    let ready = this.registered.get(name);
    if (!ready) {
      ready = this.call(SUBSCRIBE_METHOD, { event: name });
      this.registered.set(name, ready);
    }
    const mine = ready;
    return ready.then(
      () => undefined,
      (err: unknown) => {
        // A refused subscribe must not poison the name for later attempts.
        if (this.registered.get(name) === mine) {
          this.registered.delete(name);
          // Given up on here (timeout), it may still have reached the
          // server: take it back, best effort, unless another took its place.
          if (err instanceof IpcborError && (err.code === 'IPCBOR_ERR_TIMEOUT' || err.code === 'IPCBOR_ERR_CANCELLED') && this.peer.phase.stage === 'open') {
            this.call(UNSUBSCRIBE_METHOD, { event: name }).catch(noop);
          }
        }
        throw err;
      },
    );
  }

  /** Nobody subscribes to `name` any more: unregister it with the server. */
  unregister(name: string): Promise<void> {
    if (!this.registered.delete(name) || this.peer.phase.stage !== 'open') return Promise.resolve();
    return this.call(UNSUBSCRIBE_METHOD, { event: name }).then(noop, noop);
  }

  /** A call of the protocol's own (subscribe, unsubscribe), with the client's default timeout. */
  private call(method: string, params: unknown): Promise<unknown> {
    const call = new OutgoingCall(method, params, this.opts.timeout, undefined, (c, err) => this.abandon(c, err));
    const promise = call.promise();
    this.send(call);
    return promise;
  }

  /** @internal `eventOverflow: 'pause'`: a subscription's reader is a full queue behind. */
  holdsReading(): boolean {
    return this.pauses && this.subs.full;
  }

  private onEvent(name: string, dropped: number, alias: string | undefined, payload: Uint8Array): void {
    if (dropped > 0) {
      this.droppedEvents += dropped;
      this.subs.noteDropped(dropped);
    }
    if (!this.subs.wanted(name, alias)) return;
    let value: unknown;
    try {
      value = payload.length === 0 ? undefined : this.peer.codec.decode(payload);
    } catch (err) {
      throw new IpcborError('IPCBOR_ERR_DECODE', `event ${name}: ${messageOf(err)}`, { cause: err });
    }
    this.subs.deliver(name, alias, value, payload.length);
    if (this.opts.eventOverflow === 'pause') this.peer.flow.update();
  }

  // ---- input ----------------------------------------------------------------

  /** @internal a base-framing answer: to the oldest request */
  response(ret: number, body: Uint8Array): void {
    const waiting = this.fifo.shift();
    if (waiting === undefined) throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'the server sent an answer to no request');
    if (typeof waiting === 'function') return waiting(ret, body);
    // Given up on (timeout, abort): the answer is dropped.
    if (waiting.settled) return;
    if (ret === 0) {
      this.resolveWith(waiting, body);
    } else {
      const text = utf8Loose.decode(body);
      this.settle(waiting, undefined, new RemoteError('IPCBOR_ERR_REMOTE', text === '' ? 'the server reported an error without text' : text, { method: waiting.method }));
    }
  }

  private resolveWith(call: OutgoingCall, body: Uint8Array): void {
    let value: unknown;
    try {
      value = this.peer.decodePayload(body);
    } catch (err) {
      this.settle(call, undefined, new IpcborError('IPCBOR_ERR_DECODE', `the answer to ${call.method} is not valid CBOR: ${messageOf(err)}`, { method: call.method, cause: err }));
      return;
    }
    this.settle(call, value);
  }

  /** @internal RESULT or EVENT */
  frame(head: Head, payload: Uint8Array): void {
    if (head.kind === Kind.Event) return this.onEvent(head.name, head.dropped, head.alias, payload);
    if (head.kind !== Kind.Result) return;
    const call = this.pending.get(head.id);
    if (!call) return;
    if (call.stream) {
      this.settle(call, undefined, new IpcborError('IPCBOR_ERR_PROTOCOL', `the server sent a result for ${call.method} after stream items`, { method: call.method }));
      return;
    }
    this.resolveWith(call, payload);
  }

  /** @internal ERROR for a call */
  callFailed(id: number, err: RemoteError): void {
    const call = this.pending.get(id);
    if (call) this.settle(call, undefined, new RemoteError(err.code, err.message, { method: call.method, data: err.data }));
  }

  /** @internal The call's answer is a stream: open it on the first ITEM or END and resolve the call with it. */
  streamArrived(id: number): boolean {
    const call = this.pending.get(id);
    if (!call || call.stream) return false;
    const stream = this.peer.streams.open(id, {
      // The reader stopped early: the call is given up.
      stopped: () => this.abandon(call, new IpcborError('IPCBOR_ERR_CANCELLED', 'the reader stopped the stream', { method: call.method })),
      // The stream ended: its call is over.
      ended: () => {
        if (call.stream?.done) this.settle(call, undefined);
      },
      // An item could not be decoded (CANCEL was sent): the call is over, with that error.
      failed: (err) => this.settle(call, undefined, err),
    });
    call.stream = stream;
    // The call stays pending (its id taken, its timer running) until the stream ends.
    this.settle(call, stream);
    return true;
  }

  /** @internal */
  connectionClosed(reason: IpcborError): void {
    const all: OutgoingCall[] = [...this.pending.valuesList(), ...this.queue];
    for (const w of this.fifo) if (typeof w !== 'function') all.push(w);
    this.fifo.length = 0;
    this.pending.clear();
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) if (q.source) discard(q.source);
    // The hello: a connection we failed (a bad or oversized answer) is
    // that error, never "closed", which would read as a base-framing peer.
    this.helloFailed?.(reason);
    this.helloFailed = undefined;
    for (const call of all) this.settle(call, undefined, this.closedError(call.method));
    this.registered.clear();
    this.checkIdle();
  }

  /** IPCBOR_ERR_CONNECTION_CLOSED for a call of `method`, with why as its cause. */
  closedError(method: string): IpcborError {
    const reason = this.peer.reason;
    if (reason === undefined) return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection is closing', { method });
    const message = reason.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? reason.message : `the connection closed: ${reason.message}`;
    return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', message, { method, cause: reason });
  }
}
