/**
 * The client's end of one connection: the peer, plus what only a client
 * does. It encodes calls, matches answers to them (seed framing by order,
 * the extended protocol by id), and settles every pending call at once
 * when the connection goes.
 */
import {
  CLOSE_LINGER_MS,
  DEFAULT_EVENT_QUEUE,
  DEFAULT_EVENT_QUEUE_BYTES,
  DEFAULT_MAX_CONNECTION_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_STREAM_WINDOW,
} from '../constants.js';
import { cbor, type Codec } from '../codec/cbor.js';
import { IpcborError, RemoteError, asIpcborError, messageOf } from '../errors.js';
import { encodeExtended, encodeRequest } from '../frame/encoder.js';
import { ConnectionBudget } from '../peer/budget.js';
import { Peer } from '../peer/peer.js';
import type { PeerRole } from '../peer/role.js';
import type { AsyncQueue } from '../peer/queue.js';
import { discardIterable as discard, isAsyncIterable } from '../peer/streams.js';
import { encodeCallHeader } from '../protocol/fast-heads.js';
import { HELLO_METHOD, Kind, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD, type CallOptions, type Head } from '../protocol/heads.js';
import { helloOffer, readHelloResponse, type HelloResponse } from '../protocol/hello.js';
import type { Transport } from '../transport.js';
import { checkTimeout, type CallOptions as CallOptionsClient } from '../call-options.js';
import { Subscription, type EventLimits, type EventListener } from './subscription.js';

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

interface Pending {
  readonly method: string;
  /** 0 until the call is sent (it may wait in the queue for a free server slot). */
  id: number;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  settled: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The answer is a stream: its items land here. */
  stream: AsyncQueue<unknown> | undefined;
  /** Seed framing only: handles the raw answer (the hello uses it), or drops it (a notification). */
  raw?: (ret: number, body: Uint8Array) => void;
}

/** A call waiting for a free server slot (extended protocol). */
interface QueuedCall {
  p: Pending;
  payload: Uint8Array;
  callOpts: CallOptions | undefined;
  source: AsyncIterable<unknown> | undefined;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Loose = new TextDecoder();
/** A seed peer's refusal of the hello is a short text; anything else is not a seed peer talking. */
const MAX_SEED_REFUSAL = 4096;
const noop = (): void => {};

export class ClientConnection implements PeerRole {
  /** The connection's peer: framing, phase, flow, timers, streams. */
  readonly peer: Peer;
  /** What the server said in its hello answer (extended protocol only). */
  serverInfo: HelloResponse | undefined;
  /** Events the server dropped for this connection because it read too slowly. */
  droppedEvents = 0;

  private readonly opts: ClientConnectionOptions;
  private readonly fifo: Pending[] = [];
  private readonly pending = new Map<number, Pending>();
  private queue: QueuedCall[] = [];
  private peerMaxInflight = Infinity;
  private nextId = 0;
  private readonly methodCache = new Map<string, Uint8Array>();
  private readonly subs = new Map<string, Set<Subscription>>();
  private readonly serverSubs = new Map<string, Promise<unknown>>();
  /** Subscriptions the reconnecting client owns: they outlive this connection. */
  private readonly kept = new WeakSet<Subscription>();
  private unsettled = 0;
  private idleWaiters: (() => void)[] = [];
  /** `eventOverflow: 'pause'`: a reader took an event (or its queue went): read on if none is full now. */
  private readonly readOn = (): void => this.peer.flow.update();

  constructor(transport: Transport, options: ClientConnectionOptions = {}) {
    this.peer = new Peer(transport, this, {
      codec: options.codec ?? cbor,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      receives: 'response',
      takes: [Kind.Result, Kind.Event],
      other: 'server',
      window: options.window ?? DEFAULT_STREAM_WINDOW,
      budget: new ConnectionBudget(options.maxConnectionBytes ?? DEFAULT_MAX_CONNECTION_BYTES),
      guardWrites: false,
      frameTimeout: options.frameTimeout ?? 0,
      idleTimeout: options.idleTimeout ?? 0,
      linger: CLOSE_LINGER_MS,
    });
    this.opts = options;
  }

  /** Calls made and not yet settled. */
  get inflight(): number {
    return this.unsettled;
  }

  get quiet(): boolean {
    return this.unsettled === 0 && this.pending.size === 0 && this.queue.length === 0;
  }

  /** Resolves when no call is waiting for its answer and no result stream is open (or the connection closed). */
  idle(): Promise<void> {
    if (this.quiet || this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !(this.quiet || this.state === 'closed')) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  // ---- negotiation ----------------------------------------------------------

  /**
   * Offer the extended protocol. Resolves `extended` when the server
   * accepts, `seed` when it answers as a seed peer does (an error with a
   * short text). Rejects when the answer is neither (the connection is
   * failed: never a silent fall back), or when the connection closes first.
   */
  hello(): Promise<'seed' | 'extended'> {
    return new Promise((resolve, reject) => {
      const p = this.newPending(HELLO_METHOD, resolve, reject);
      p.raw = (ret, body) => {
        p.settled = true;
        try {
          if (ret !== 0) {
            if (body.length > MAX_SEED_REFUSAL) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `the server refused the hello with ${body.length} bytes of text`);
            utf8Strict.decode(body);
            resolve('seed');
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
      this.fifo.push(p);
      this.peer.write(encodeRequest(HELLO_METHOD, this.peer.codec.encode(helloOffer(this.peer.decoder.maxFrameBytes, this.peer.window))));
    });
  }

  // ---- calls ----------------------------------------------------------------

  call(method: string, params: unknown = {}, opts: CallOptionsClient = {}): Promise<unknown> {
    if (this.state !== 'open') return Promise.reject(this.closedError(method));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(cancelled(method, signal.reason));
    const streamed = isAsyncIterable(params);
    if (streamed && this.protocol === 'seed') {
      discard(params);
      return Promise.reject(new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'streaming params need the extended protocol, which this server does not speak', { method }));
    }
    let payload: Uint8Array;
    let timeout: number | undefined;
    try {
      payload = streamed ? EMPTY : this.peer.codec.encode(params);
      this.peer.checkOutgoing(payload.length, 'params', method);
      timeout = checkTimeout(opts.timeout ?? this.opts.timeout);
    } catch (err) {
      if (streamed) discard(params);
      return Promise.reject(err);
    }
    this.unsettled++;
    return new Promise((resolve, reject) => {
      const p = this.newPending(method, resolve, reject);
      if (this.protocol === 'seed') {
        this.fifo.push(p);
        this.peer.write(encodeRequest(this.methodBytes(method), payload));
      } else {
        let callOpts: CallOptions | undefined;
        if (timeout !== undefined || streamed) {
          callOpts = {};
          if (timeout !== undefined) callOpts.timeout = timeout;
          if (streamed) callOpts.stream = true;
        }
        const source = streamed ? (params as AsyncIterable<unknown>) : undefined;
        // The server takes at most `maxInflight` calls per connection; the
        // rest wait here, in the caller's own process, for a free slot.
        if (this.pending.size < this.peerMaxInflight) this.send(p, payload, callOpts, source);
        else this.queue.push({ p, payload, callOpts, source });
      }
      if (timeout !== undefined) {
        // A call's own timer keeps the process alive while the call waits.
        p.timer = setTimeout(() => this.abandon(p, new IpcborError('IPCBOR_ERR_TIMEOUT', `${method} timed out after ${timeout} ms`, { method })), timeout);
      }
      if (signal) {
        p.signal = signal;
        p.onAbort = () => this.abandon(p, cancelled(method, signal.reason));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
    });
  }

  private send(p: Pending, payload: Uint8Array, callOpts: CallOptions | undefined, source: AsyncIterable<unknown> | undefined): void {
    const id = this.allocId();
    p.id = id;
    this.pending.set(id, p);
    this.peer.write(
      callOpts
        ? encodeExtended(this.peer.codec.encode([Kind.Call, id, p.method, callOpts]), payload)
        : [encodeCallHeader(id, this.methodBytes(p.method), payload.length), payload],
    );
    if (source) void this.peer.streams.send(id, source, p.method);
  }

  /** Send queued calls while the server has free slots. */
  private sendQueued(): void {
    while (this.queue.length > 0 && this.pending.size < this.peerMaxInflight && this.state === 'open') {
      const next = this.queue.shift()!;
      if (!next.p.settled) this.send(next.p, next.payload, next.callOpts, next.source);
    }
  }

  /** A one-way call: no answer comes back. Seed peers get a normal call whose answer is dropped. */
  notify(method: string, params: unknown = {}): void {
    if (this.state !== 'open') throw this.closedError(method);
    const payload = this.peer.codec.encode(params);
    this.peer.checkOutgoing(payload.length, 'params', method);
    if (this.protocol === 'extended') {
      this.peer.write(encodeExtended(this.peer.codec.encode([Kind.Notify, method]), payload));
    } else {
      const p = this.newPending(method, noop, noop);
      p.raw = noop;
      this.fifo.push(p);
      this.peer.write(encodeRequest(this.methodBytes(method), payload));
    }
  }

  private newPending(method: string, resolve: (v: never) => void, reject: (e: unknown) => void): Pending {
    return { method, id: 0, resolve: resolve as (v: unknown) => void, reject, settled: false, timer: undefined, signal: undefined, onAbort: undefined, stream: undefined };
  }

  private allocId(): number {
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private methodBytes(method: string): Uint8Array {
    let bytes = this.methodCache.get(method);
    if (bytes === undefined) {
      bytes = utf8.encode(method);
      if (this.methodCache.size < 1024) this.methodCache.set(method, bytes);
    }
    return bytes;
  }

  /** The caller gave up (timeout, abort): settle now, tell the server (extended), drop the answer when it comes. */
  private abandon(p: Pending, err: IpcborError): void {
    if (p.settled && !p.stream) return;
    if (this.protocol === 'extended' && this.pending.get(p.id) === p) {
      this.peer.writeHead([Kind.Cancel, p.id]);
      // Items of its result stream nobody will read: let them go now.
      this.peer.streams.closeInbound(p.id, err, true);
    } else if (p.id === 0) {
      // Never sent: nothing to cancel on the server; close a streamed source.
      const i = this.queue.findIndex((q) => q.p === p);
      if (i >= 0) {
        const [queued] = this.queue.splice(i, 1);
        if (queued!.source) discard(queued!.source);
      }
    }
    this.settle(p, undefined, err);
  }

  /** Settle a call once: resolve with `value` or reject with `err`; release its timer, listener, id and streams. */
  private settle(p: Pending, value: unknown, err?: unknown): void {
    const streaming = p.stream !== undefined && !p.stream.done;
    if (err !== undefined || !streaming) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.timer = undefined;
      if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
      p.onAbort = undefined;
      if (p.id !== 0 && this.pending.get(p.id) === p) {
        this.pending.delete(p.id);
        this.peer.streams.stopOutbound(p.id);
        if (err !== undefined) this.peer.streams.closeInbound(p.id, err as IpcborError);
        if (this.queue.length > 0) this.sendQueued();
      }
    }
    if (!p.settled) {
      p.settled = true;
      if (err !== undefined) p.reject(err);
      else p.resolve(value);
      this.unsettled--;
    }
    this.checkIdle();
  }

  // ---- events ---------------------------------------------------------------

  /**
   * Receive the server's events named `name` (`*` for all). The returned
   * subscription is an async iterable and disposable; `listener`, if given,
   * is called for each event instead of queueing it.
   */
  subscribe(name: string, listener?: EventListener): Subscription {
    if (this.protocol !== 'extended') {
      throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this server does not speak');
    }
    if (this.state !== 'open') throw this.closedError(SUBSCRIBE_METHOD);
    const sub = new Subscription(name, listener, this.eventLimits(), (s) => this.unsubscribe(s));
    sub.ready = this.register(sub);
    sub.ready.catch(noop);
    return sub;
  }

  /** @internal how many events a subscription's iterator may hold, and what a full one does. */
  eventLimits(): EventLimits {
    return { maxItems: this.opts.eventQueue ?? DEFAULT_EVENT_QUEUE, maxBytes: this.opts.eventQueueBytes ?? DEFAULT_EVENT_QUEUE_BYTES, overflow: this.opts.eventOverflow ?? 'drop' };
  }

  /** `eventOverflow: 'pause'`: a subscription's reader is a full queue behind. */
  holdsReading(): boolean {
    if (this.opts.eventOverflow !== 'pause') return false;
    for (const set of this.subs.values()) for (const s of set) if (s.full) return true;
    return false;
  }

  /**
   * @internal Deliver the server's events `sub.name` to `sub` on this
   * connection. With `keep` (the reconnecting client's subscriptions), the
   * subscription is not closed when this connection closes or the server
   * refuses: the caller decides. Resolves once the server registered it.
   */
  register(sub: Subscription, keep = false): Promise<void> {
    const name = sub.name;
    if (this.protocol !== 'extended') {
      return Promise.reject(new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this server does not speak'));
    }
    if (this.state !== 'open') return Promise.reject(this.closedError(SUBSCRIBE_METHOD));
    if (keep) this.kept.add(sub);
    if (this.opts.eventOverflow === 'pause') sub.onRoom = this.readOn;
    let set = this.subs.get(name);
    if (!set) {
      set = new Set();
      this.subs.set(name, set);
    }
    set.add(sub);
    let ready = this.serverSubs.get(name);
    if (!ready) {
      ready = this.call(SUBSCRIBE_METHOD, { event: name });
      this.serverSubs.set(name, ready);
    }
    const mine = set;
    return ready.then(
      () => undefined,
      (err: unknown) => {
        // A refused subscribe must not poison the name for later attempts.
        if (this.serverSubs.get(name) === ready) {
          this.serverSubs.delete(name);
          // Given up on here (timeout), it may still have reached the
          // server: take it back, best effort, unless another took its place.
          if (err instanceof IpcborError && (err.code === 'IPCBOR_ERR_TIMEOUT' || err.code === 'IPCBOR_ERR_CANCELLED') && this.state === 'open') {
            this.call(UNSUBSCRIBE_METHOD, { event: name }).catch(noop);
          }
        }
        mine.delete(sub);
        if (mine.size === 0 && this.subs.get(name) === mine) this.subs.delete(name);
        if (!keep) sub.close(err);
        if (this.opts.eventOverflow === 'pause') this.readOn();
        throw err;
      },
    );
  }

  /** @internal stop delivering to `sub` (the last one of its name unsubscribes on the server). */
  release(sub: Subscription): Promise<void> {
    return this.unsubscribe(sub);
  }

  private unsubscribe(sub: Subscription): Promise<void> {
    const set = this.subs.get(sub.name);
    if (!set?.delete(sub) || set.size > 0) return Promise.resolve();
    this.subs.delete(sub.name);
    this.serverSubs.delete(sub.name);
    if (this.state !== 'open') return Promise.resolve();
    return this.call(UNSUBSCRIBE_METHOD, { event: sub.name }).then(noop, noop);
  }

  private onEvent(name: string, dropped: number, alias: string | undefined, payload: Uint8Array): void {
    const named = this.subs.get(name);
    const aliased = alias === undefined ? undefined : this.subs.get(alias);
    const all = this.subs.get('*');
    if (dropped > 0) {
      this.droppedEvents += dropped;
      for (const set of this.subs.values()) for (const s of set) s.noteDropped(dropped);
    }
    if (!named && !aliased && !all) return;
    let value: unknown;
    try {
      value = payload.length === 0 ? undefined : this.peer.codec.decode(payload);
    } catch (err) {
      throw new IpcborError('IPCBOR_ERR_DECODE', `event ${name}: ${messageOf(err)}`, { cause: err });
    }
    const bytes = payload.length;
    if (named) for (const s of named) s.deliver(name, value, bytes);
    if (aliased) for (const s of aliased) s.deliver(alias!, value, bytes);
    // `*` names an event the way it is subscribed to by name: a default
    // service's events by their bare name.
    if (all) for (const s of all) s.deliver(alias ?? name, value, bytes);
    if (this.opts.eventOverflow === 'pause') this.peer.flow.update();
  }

  // ---- input ----------------------------------------------------------------

  response(ret: number, body: Uint8Array): void {
    const p = this.fifo.shift();
    if (p === undefined) throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'the server sent an answer to no request');
    if (p.raw) return p.raw(ret, body);
    if (p.settled) return;
    if (ret === 0) {
      this.resolveWith(p, body);
    } else {
      const text = utf8Loose.decode(body);
      this.settle(p, undefined, new RemoteError('IPCBOR_ERR_REMOTE', text === '' ? 'the server reported an error without text' : text, { method: p.method }));
    }
  }

  private resolveWith(p: Pending, body: Uint8Array): void {
    let value: unknown;
    try {
      value = this.peer.decodePayload(body);
    } catch (err) {
      this.settle(p, undefined, new IpcborError('IPCBOR_ERR_DECODE', `the answer to ${p.method} is not valid CBOR: ${messageOf(err)}`, { method: p.method, cause: err }));
      return;
    }
    this.settle(p, value);
  }

  frame(head: Head, payload: Uint8Array): void {
    switch (head.kind) {
      case Kind.Result: {
        const p = this.pending.get(head.id);
        if (!p) return;
        if (p.stream) {
          this.settle(p, undefined, new IpcborError('IPCBOR_ERR_PROTOCOL', `the server sent a result for ${p.method} after stream items`, { method: p.method }));
          return;
        }
        this.resolveWith(p, payload);
        return;
      }
      case Kind.Event:
        return this.onEvent(head.name, head.dropped, head.alias, payload);
      default:
        throw new IpcborError('IPCBOR_ERR_PROTOCOL', `a server may not send frame kind ${head.kind}`);
    }
  }

  callFailed(id: number, err: RemoteError): void {
    const p = this.pending.get(id);
    if (p) this.settle(p, undefined, new RemoteError(err.code, err.message, { method: p.method, data: err.data }));
  }

  /** The call's answer is a stream: open it on the first ITEM or END and resolve the call with it. */
  streamArrived(id: number): boolean {
    const p = this.pending.get(id);
    if (!p || p.stream) return false;
    const stream = this.peer.streams.open(id, {
      // The reader stopped early: the call is given up.
      stopped: () => this.abandon(p, new IpcborError('IPCBOR_ERR_CANCELLED', 'the reader stopped the stream', { method: p.method })),
      // The stream ended: its call is over.
      ended: () => {
        if (p.stream?.done) this.settle(p, undefined);
      },
    });
    p.stream = stream;
    this.settle(p, stream);
    // The call stays pending (its id taken, its timer running) until the stream ends.
    return true;
  }

  connectionClosed(reason: IpcborError): void {
    const all = [...this.fifo, ...this.pending.values(), ...this.queue.map((q) => q.p)];
    this.fifo.length = 0;
    this.pending.clear();
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) if (q.source) discard(q.source);
    for (const p of all) {
      if (p.raw && !p.settled) {
        // The hello: a connection we failed (a bad or oversized answer) is
        // that error, never "closed", which would read as a seed peer.
        p.settled = true;
        p.reject(reason.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? this.closedError(p.method) : reason);
        continue;
      }
      this.settle(p, undefined, this.closedError(p.method));
    }
    for (const set of this.subs.values()) {
      for (const s of set) if (!this.kept.has(s)) s.close(new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the connection closed: ${reason.message}`, { cause: reason }));
    }
    this.subs.clear();
    this.checkIdle();
  }

  private closedError(method: string): IpcborError {
    const reason = this.reason;
    if (reason === undefined) return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection is closing', { method });
    const message = reason.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? reason.message : `the connection closed: ${reason.message}`;
    return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', message, { method, cause: reason });
  }

  /** Close at once. Also after the connection settled (a failed one may still hold its socket, ending): the socket goes now. */
  destroy(cause?: IpcborError): void {
    this.peer.destroy(cause);
  }

  /** Close gracefully: the transport flushes what was written, and is cut if the server does not close its side in turn. Pending calls reject when it has closed. */
  end(): void {
    this.peer.beginClosing('end');
  }

  get state(): 'open' | 'closing' | 'closed' {
    const stage = this.peer.phase.stage;
    return stage === 'open' ? 'open' : stage === 'closed' ? 'closed' : 'closing';
  }

  get protocol(): 'seed' | 'extended' {
    return this.peer.protocol;
  }

  get reason(): IpcborError | undefined {
    return this.peer.reason;
  }

  get closed(): Promise<IpcborError> {
    return this.peer.closed;
  }
}

function cancelled(method: string, reason: unknown): IpcborError {
  return new IpcborError('IPCBOR_ERR_CANCELLED', `${method} was cancelled`, { method, cause: reason });
}

