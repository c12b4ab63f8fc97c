/**
 * One client-side connection: encodes calls, matches answers to them,
 * settles every pending call at once when the connection goes. Seed
 * framing matches answers by order (a FIFO); the extended protocol by id.
 * No I/O here: bytes leave through the Transport and come back through
 * `receive`.
 */
import { cbor, type Codec } from '../codec/cbor.js';
import { DEFAULT_EVENT_QUEUE, DEFAULT_MAX_FRAME_BYTES, DEFAULT_STREAM_WINDOW, MAX_TIMER_MS, PROTOCOL_VERSION } from '../constants.js';
import { IpcborError, RemoteError, messageOf } from '../errors.js';
import { FrameDecoder } from '../frame/decoder.js';
import { encodeExtended, encodeRequest, type FrameParts } from '../frame/encoder.js';
import { encodeCallHeader, encodeKindIdHeader } from './heads.js';
import { HELLO_METHOD, Kind, SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD, decodeHead, isPositiveInt, type CallOptions, type Head, type HelloRequest, type HelloResponse } from './protocol.js';
import { discardIterable } from './call.js';
import { InboundStream, addCredit, createOutbound, isAsyncIterable, pumpStream, stopOutbound, type OutboundStream } from './streams.js';
import { Subscription, type EventListener } from './subscription.js';
import type { Transport } from './transport.js';

export interface CallOptionsClient {
  /** Reject with IPCBOR_ERR_TIMEOUT after this many ms; the deadline also travels to the server (extended protocol). */
  timeout?: number;
  /** Abort the call: it rejects with IPCBOR_ERR_CANCELLED and the server's handler is signalled (extended protocol). */
  signal?: AbortSignal;
}

export interface ClientSessionOptions {
  codec?: Codec;
  /** Largest answer accepted, in bytes (default 16 MiB); announced to the server. */
  maxFrameBytes?: number;
  /** Default timeout of every call, in ms (default: none). */
  timeout?: number;
  /** Stream items accepted per stream before granting more (default 64). */
  window?: number;
  /** Events buffered per subscription for a slow async-iterator reader before the oldest are dropped (default 1024). */
  eventQueue?: number;
}

interface Pending {
  readonly method: string;
  /** 0 until the call is sent (it may wait in the queue for a free server slot). */
  readonly id: number;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  settled: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The answer is a stream: its items land here. */
  stream: InboundStream | undefined;
  /** The params are a stream we send. */
  out: OutboundStream | undefined;
  /** Seed framing only: handles the raw answer (the hello uses it). */
  raw?: (ret: number, body: Uint8Array) => void;
}

/** A call waiting for a free server slot (extended protocol). */
interface QueuedCall {
  p: Pending;
  payload: Uint8Array;
  callOpts: CallOptions | undefined;
  source: AsyncIterable<unknown> | undefined;
}

const setTimer = globalThis.setTimeout;
const clearTimer = globalThis.clearTimeout;

/**
 * A call's timeout, checked the one way both remote and in-process calls
 * do: a RangeError if it is not a duration; undefined (no deadline) when
 * absent or longer than a timer can wait (2^31-1 ms, about 24.8 days).
 */
export function checkTimeout(timeout: number | undefined): number | undefined {
  if (timeout === undefined) return undefined;
  if (typeof timeout !== 'number' || !(timeout >= 0)) {
    throw new RangeError(`timeout must be a non-negative number of milliseconds, got ${String(timeout)}`);
  }
  return timeout > MAX_TIMER_MS ? undefined : timeout;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export class ClientSession {
  private readonly transport: Transport;
  private readonly codec: Codec;
  private readonly decoder: FrameDecoder;
  private readonly options: ClientSessionOptions;
  private readonly window: number;
  private mode: 'seed' | 'extended' = 'seed';
  private readonly fifo: Pending[] = [];
  private readonly pending = new Map<number, Pending>();
  private queue: QueuedCall[] = [];
  private peerMaxInflight = Infinity;
  private nextId = 0;
  private peerMaxFrame = Infinity;
  private peerWindow = DEFAULT_STREAM_WINDOW;
  private writeBlocked = false;
  private drainWaiters: (() => void)[] = [];
  private dead: IpcborError | undefined;
  private readonly methodCache = new Map<string, Uint8Array>();
  private readonly subs = new Map<string, Set<Subscription>>();
  private serverSubs = new Map<string, Promise<unknown>>();
  private closeListeners: ((err: IpcborError) => void)[] = [];
  private unsettled = 0;
  private idleWaiters: (() => void)[] = [];
  /** Events the server dropped for this connection because it read too slowly. */
  droppedEvents = 0;
  /** What the server said in its hello answer (extended protocol only). */
  serverInfo: HelloResponse | undefined;

  constructor(transport: Transport, options: ClientSessionOptions = {}) {
    this.transport = transport;
    this.options = options;
    this.codec = options.codec ?? cbor;
    this.window = options.window ?? DEFAULT_STREAM_WINDOW;
    this.decoder = new FrameDecoder(
      'response',
      {
        response: (ret, body) => this.onSeedResponse(ret, body),
        extended: (head, payload) => this.onExtended(head, payload),
      },
      { maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES },
    );
  }

  /** `seed` until a hello succeeded, then `extended`. */
  get protocol(): 'seed' | 'extended' {
    return this.mode;
  }

  /** Calls made and not yet settled. */
  get inflight(): number {
    return this.unsettled;
  }

  /** Resolves when no call is waiting for its answer and no result stream is open (or the connection closed). */
  idle(): Promise<void> {
    if (this.isIdle() || this.dead) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.unsettled === 0 && this.pending.size === 0 && this.queue.length === 0;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Called once, with the error every pending call was rejected with, when the connection goes. */
  onClose(listener: (err: IpcborError) => void): void {
    if (this.dead) listener(this.dead);
    else this.closeListeners.push(listener);
  }

  // ---- negotiation ----------------------------------------------------------

  /**
   * Offer the extended protocol. Resolves `extended` when the server
   * accepts, `seed` when it answers with an error (a seed peer: unknown
   * method). Rejects if the connection closes first.
   */
  hello(): Promise<'seed' | 'extended'> {
    const offer: HelloRequest = {
      version: PROTOCOL_VERSION,
      maxFrameBytes: this.decoder.maxFrameBytes,
      window: this.window,
    };
    return new Promise((resolve, reject) => {
      const p = this.newPending(HELLO_METHOD, 0, resolve, reject);
      p.raw = (ret, body) => {
        if (ret !== 0) {
          resolve('seed');
          return;
        }
        try {
          const answer = this.codec.decode(body) as HelloResponse;
          if (typeof answer !== 'object' || answer === null || !isPositiveInt(answer.version) || answer.version > PROTOCOL_VERSION || !isPositiveInt(answer.maxFrameBytes) || !isPositiveInt(answer.window)) {
            throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'the server answered the hello with an unusable offer');
          }
          this.serverInfo = answer;
          this.peerMaxFrame = answer.maxFrameBytes;
          if (isPositiveInt(answer.maxInflight)) this.peerMaxInflight = answer.maxInflight;
          this.peerWindow = answer.window;
          // Everything after the hello answer is extended framing.
          this.decoder.mode = 'extended';
          this.mode = 'extended';
          resolve('extended');
        } catch (err) {
          reject(err);
          this.fail(err instanceof IpcborError ? err : new IpcborError('IPCBOR_ERR_PROTOCOL', messageOf(err)));
        }
      };
      this.fifo.push(p);
      this.transport.write(encodeRequest(HELLO_METHOD, this.codec.encode(offer)));
    });
  }

  // ---- calls ----------------------------------------------------------------

  call(method: string, params: unknown = {}, opts: CallOptionsClient = {}): Promise<unknown> {
    if (this.dead) return Promise.reject(this.closedError(method));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(cancelled(method, signal.reason));
    const streamed = isAsyncIterable(params) && !(params instanceof Uint8Array);
    if (streamed && this.mode === 'seed') {
      discardIterable(params);
      return Promise.reject(new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'streaming params need the extended protocol, which this server does not speak', { method }));
    }
    let payload: Uint8Array;
    try {
      payload = streamed ? EMPTY : this.codec.encode(params);
    } catch (err) {
      return Promise.reject(err);
    }
    if (payload.length > this.peerMaxFrame) {
      return Promise.reject(
        new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `params of ${payload.length} bytes are over the server's limit of ${this.peerMaxFrame} bytes`, { method }),
      );
    }
    let timeout: number | undefined;
    try {
      timeout = checkTimeout(opts.timeout ?? this.options.timeout);
    } catch (err) {
      return Promise.reject(err);
    }
    this.unsettled++;
    return new Promise((resolve, reject) => {
      const p = this.newPending(method, 0, resolve, reject);
      if (this.mode === 'seed') {
        this.fifo.push(p);
        this.write(encodeRequest(this.methodBytes(method), payload));
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
        p.timer = setTimer(() => this.abandon(p, new IpcborError('IPCBOR_ERR_TIMEOUT', `${method} timed out after ${timeout} ms`, { method })), timeout);
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
    (p as { id: number }).id = id;
    this.pending.set(id, p);
    this.write(
      callOpts
        ? encodeExtended(this.codec.encode([Kind.Call, id, p.method, callOpts]), payload)
        : [encodeCallHeader(id, this.methodBytes(p.method), payload.length), payload],
    );
    if (source) this.sendStream(p, source);
  }

  /** Send queued calls while the server has free slots. */
  private sendQueued(): void {
    while (this.queue.length > 0 && this.pending.size < this.peerMaxInflight && !this.dead) {
      const next = this.queue.shift()!;
      if (!next.p.settled) this.send(next.p, next.payload, next.callOpts, next.source);
    }
  }

  /** A one-way call: no answer comes back. Seed peers get a normal call whose answer is dropped. */
  notify(method: string, params: unknown = {}): void {
    if (this.dead) throw this.closedError(method);
    const payload = this.codec.encode(params);
    if (payload.length > this.peerMaxFrame) {
      throw new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `params of ${payload.length} bytes are over the server's limit of ${this.peerMaxFrame} bytes`, { method });
    }
    if (this.mode === 'extended') {
      this.write(encodeExtended(this.codec.encode([Kind.Notify, method]), payload));
    } else {
      const p = this.newPending(method, 0, noop, noop);
      p.settled = true;
      this.fifo.push(p);
      this.write(encodeRequest(this.methodBytes(method), payload));
    }
  }

  private newPending(method: string, id: number, resolve: (v: never) => void, reject: (e: unknown) => void): Pending {
    return {
      method,
      id,
      resolve: resolve as (v: unknown) => void,
      reject,
      settled: false,
      timer: undefined,
      signal: undefined,
      onAbort: undefined,
      stream: undefined,
      out: undefined,
    };
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
    if (this.mode === 'extended' && this.pending.get(p.id) === p) {
      this.writeHead([Kind.Cancel, p.id]);
    } else if (p.id === 0 && this.queue.length > 0) {
      // Never sent: nothing to cancel on the server; close a streamed source.
      const queued = this.queue.find((q) => q.p === p);
      if (queued) {
        this.queue = this.queue.filter((q) => q !== queued);
        if (queued.source) discardIterable(queued.source);
      }
    }
    this.settle(p, undefined, err);
  }

  /** Settle a call once: resolve with `value` or reject with `err`; release its timer, listener, id and streams. */
  private settle(p: Pending, value: unknown, err?: unknown): void {
    const streaming = p.stream !== undefined && !p.stream.done;
    if (err !== undefined || !streaming) {
      if (p.timer !== undefined) clearTimer(p.timer);
      p.timer = undefined;
      if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
      p.onAbort = undefined;
      if (this.pending.get(p.id) === p) {
        this.pending.delete(p.id);
        if (this.queue.length > 0) this.sendQueued();
      }
      if (p.out) stopOutbound(p.out);
    }
    if (err !== undefined) p.stream?.fail(err);
    if (!p.settled) {
      p.settled = true;
      if (err !== undefined) p.reject(err);
      else p.resolve(value);
      if (p.raw === undefined) this.unsettled--;
    }
    this.checkIdle();
  }

  private sendStream(p: Pending, source: AsyncIterable<unknown>): void {
    const out = createOutbound(this.peerWindow);
    p.out = out;
    const id = p.id;
    void pumpStream(source, out, {
      item: (v) => {
        const bytes = this.codec.encode(v);
        if (bytes.length > this.peerMaxFrame) {
          throw new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `stream item of ${bytes.length} bytes is over the server's limit of ${this.peerMaxFrame} bytes`, { method: p.method });
        }
        this.write([encodeKindIdHeader(Kind.Item, id, bytes.length), bytes]);
      },
      end: () => this.writeHead([Kind.End, id]),
      error: (err) => {
        const e = err instanceof IpcborError ? err : new IpcborError('IPCBOR_ERR_HANDLER', messageOf(err), { cause: err });
        this.writeHead([Kind.Error, id, e.code, e.message]);
      },
      writable: () => (this.writeBlocked && !this.dead ? new Promise((r) => this.drainWaiters.push(r)) : undefined),
    });
  }

  // ---- events ---------------------------------------------------------------

  /**
   * Receive the server's events named `name` (`*` for all). The returned
   * subscription is an async iterable and disposable; `listener`, if given,
   * is called for each event instead of queueing it.
   */
  subscribe(name: string, listener?: EventListener): Subscription {
    if (this.mode !== 'extended') {
      throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this server does not speak');
    }
    if (this.dead) throw this.closedError(SUBSCRIBE_METHOD);
    const sub = new Subscription(name, listener, this.options.eventQueue ?? DEFAULT_EVENT_QUEUE, (s) => this.unsubscribe(s));
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
    sub.ready = ready.then(
      () => undefined,
      (err: unknown) => {
        // A refused subscribe must not poison the name for later attempts.
        if (this.serverSubs.get(name) === ready) {
          this.serverSubs.delete(name);
          // Given up on here (timeout), it may still have reached the
          // server: take it back, best effort, unless another took its place.
          if (err instanceof IpcborError && (err.code === 'IPCBOR_ERR_TIMEOUT' || err.code === 'IPCBOR_ERR_CANCELLED') && !this.dead) {
            this.call(UNSUBSCRIBE_METHOD, { event: name }).catch(noop);
          }
        }
        set.delete(sub);
        if (set.size === 0 && this.subs.get(name) === set) this.subs.delete(name);
        sub.close(err);
        throw err;
      },
    );
    sub.ready.catch(noop);
    return sub;
  }

  private unsubscribe(sub: Subscription): Promise<void> {
    const set = this.subs.get(sub.name);
    if (!set?.delete(sub) || set.size > 0) return Promise.resolve();
    this.subs.delete(sub.name);
    this.serverSubs.delete(sub.name);
    if (this.dead) return Promise.resolve();
    return this.call(UNSUBSCRIBE_METHOD, { event: sub.name }).then(
      () => undefined,
      () => undefined,
    );
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
      value = payload.length === 0 ? undefined : this.codec.decode(payload);
    } catch (err) {
      this.fail(new IpcborError('IPCBOR_ERR_DECODE', `event ${name}: ${messageOf(err)}`, { cause: err }));
      return;
    }
    if (named) for (const s of named) s.deliver(name, value);
    if (aliased) for (const s of aliased) s.deliver(alias!, value);
    if (all) for (const s of all) s.deliver(name, value);
  }

  // ---- input ----------------------------------------------------------------

  receive(chunk: Uint8Array): void {
    if (this.dead) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.fail(err instanceof IpcborError ? err : new IpcborError('IPCBOR_ERR_PROTOCOL', messageOf(err), { cause: err }));
    }
  }

  drained(): void {
    this.writeBlocked = false;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** The transport closed: every pending call rejects at once, every stream and subscription ends. */
  closed(cause?: unknown): void {
    if (this.dead) return;
    const err =
      cause instanceof IpcborError && cause.code !== 'IPCBOR_ERR_CONNECTION_CLOSED'
        ? new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the connection closed: ${cause.message}`, { cause })
        : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection closed', cause === undefined ? {} : { cause });
    this.dead = err;
    const all = [...this.fifo, ...this.pending.values(), ...this.queue.map((q) => q.p)];
    this.fifo.length = 0;
    this.pending.clear();
    this.queue = [];
    for (const p of all) this.settle(p, undefined, this.closedError(p.method));
    for (const set of this.subs.values()) for (const s of set) s.close(err);
    this.subs.clear();
    this.drained();
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const l of listeners) l(err);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private closedError(method: string): IpcborError {
    const base = this.dead;
    return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', base ? base.message : 'the connection is closed', { method, cause: base?.cause });
  }

  /** The peer broke the protocol: say why (extended protocol), close, and settle everything now. */
  private fail(err: IpcborError): void {
    if (this.mode === 'extended' && !this.dead && !(err instanceof RemoteError)) {
      this.write(encodeExtended(this.codec.encode([Kind.Error, 0, err.code, err.message])));
      this.transport.end();
    } else {
      this.transport.destroy();
    }
    this.closed(err);
  }

  private onSeedResponse(ret: number, body: Uint8Array): void {
    const p = this.fifo.shift();
    if (p === undefined) {
      this.fail(new IpcborError('IPCBOR_ERR_PROTOCOL', 'the server sent an answer to no request'));
      return;
    }
    if (p.raw) return p.raw(ret, body);
    if (p.settled) return;
    if (ret === 0) {
      this.resolveWith(p, body);
    } else {
      const text = utf8Decoder.decode(body);
      this.settle(p, undefined, new RemoteError('IPCBOR_ERR_REMOTE', text === '' ? 'the server reported an error without text' : text, { method: p.method }));
    }
  }

  private resolveWith(p: Pending, body: Uint8Array): void {
    let value: unknown;
    try {
      value = this.codec.decode(body);
    } catch (err) {
      this.settle(p, undefined, new IpcborError('IPCBOR_ERR_DECODE', `the answer to ${p.method} is not valid CBOR: ${messageOf(err)}`, { method: p.method, cause: err }));
      return;
    }
    this.settle(p, value);
  }

  private onExtended(headBytes: Uint8Array, payload: Uint8Array): void {
    let head: Head;
    try {
      head = decodeHead(this.codec, headBytes);
    } catch (err) {
      this.fail(err as IpcborError);
      return;
    }
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
          this.fail(err);
          return;
        }
        const p = this.pending.get(head.id);
        if (p) this.settle(p, undefined, new RemoteError(head.code, head.message, { method: p.method, data }));
        return;
      }
      case Kind.Item:
      case Kind.End: {
        const p = this.pending.get(head.id);
        if (!p) return;
        const stream = this.streamOf(p);
        if (head.kind === Kind.End) {
          stream.end();
          this.settle(p, stream);
          return;
        }
        let item: unknown;
        try {
          item = this.codec.decode(payload);
        } catch (err) {
          this.abandon(p, new IpcborError('IPCBOR_ERR_DECODE', `stream item of ${p.method}: ${messageOf(err)}`, { method: p.method, cause: err }));
          return;
        }
        if (!stream.push(item)) this.fail(new IpcborError('IPCBOR_ERR_PROTOCOL', `stream ${head.id} sent more items than its credit`));
        return;
      }
      case Kind.Cancel: {
        const out = this.pending.get(head.id)?.out;
        if (out) stopOutbound(out);
        return;
      }
      case Kind.Credit: {
        const out = this.pending.get(head.id)?.out;
        if (out) addCredit(out, head.n);
        return;
      }
      case Kind.Event:
        return this.onEvent(head.name, head.dropped, head.alias, payload);
      default:
        this.fail(new IpcborError('IPCBOR_ERR_PROTOCOL', `a server may not send frame kind ${head.kind}`));
    }
  }

  /** The call's answer is a stream: create it on the first ITEM or END and resolve the call with it. */
  private streamOf(p: Pending): InboundStream {
    if (p.stream) return p.stream;
    const id = p.id;
    const stream = new InboundStream(this.window, {
      grant: (n) => {
        if (this.pending.get(id) === p) this.writeHead([Kind.Credit, id, n]);
      },
      cancel: () => this.abandon(p, new IpcborError('IPCBOR_ERR_CANCELLED', 'the reader stopped the stream', { method: p.method })),
    });
    p.stream = stream;
    this.settle(p, stream);
    return stream;
  }

  // ---- output ---------------------------------------------------------------

  private write(parts: FrameParts): void {
    if (!this.transport.write(parts)) this.writeBlocked = true;
  }

  private writeHead(head: unknown[]): void {
    if (this.dead) return;
    this.write(encodeExtended(this.codec.encode(head)));
  }

  /** Close gracefully: the transport flushes what was written. Pending calls reject when it has closed. */
  end(): void {
    this.transport.end();
  }

  destroy(): void {
    this.transport.destroy();
    this.closed();
  }
}

function cancelled(method: string, reason: unknown): IpcborError {
  return new IpcborError('IPCBOR_ERR_CANCELLED', `${method} was cancelled`, { method, cause: reason });
}

function noop(): void {}
