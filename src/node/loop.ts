/**
 * The event loop (libIPC's `ipc_wait_event`): one object through which an
 * application handles everything, one event at a time.
 *
 *     await using loop = createLoop();
 *     await loop.serve('pong');
 *     loop.add(process.stdin);
 *     for (;;) {
 *       const ev = await loop.wait(1000);
 *       switch (ev.type) {
 *         case 'connection':    ...; break;
 *         case 'disconnection': ...; break;
 *         case 'message':       ev.message.reply(ev.message.params()); break;
 *         case 'timer':         ...; break;   // a second with nothing else
 *         case 'external':      ...; break;   // a line on stdin
 *         case 'error':         ...; break;
 *       }
 *     }
 *
 * It is the usual server with another executor: every call is parked and
 * handed to the application as a `message` event, and it stays charged to
 * its connection's byte budget until answered, so a loop that falls behind
 * stops reading its peers instead of growing.
 */
import type { Readable } from 'node:stream';
import { cbor } from '../core/codec/cbor.js';
import { IpcborError, asIpcborError, messageOf } from '../core/errors.js';
import type { ConnectionHandle } from '../core/server/connection.js';
import { dispatch, type IncomingCall } from '../core/server/call.js';
import { ParkedCalls } from '../core/server/parked.js';
import type { Servable, ServerCore } from '../core/server/server.js';
import type { ConnectionInfo } from '../core/transport.js';
import type { Address } from './address.js';
import { connect, type Client, type ConnectOptions } from './client.js';
import { serveWith, type ServeOptions, type Server } from './server.js';

/** One connection of the loop: one its servers accepted, or a client it dialed with `connect`. */
export interface LoopConnection {
  /**
   * Who is connected, and what it speaks: at the `connection` event,
   * `info.protocol` is already what the connection speaks for good
   * (`extended` for a client that negotiated it, `base` for one on the
   * base framing).
   */
  readonly info: ConnectionInfo;
  /**
   * Send event `name` to this connection alone (its client gets it if it
   * subscribed to the name or `*`). Throws IPCBOR_ERR_NOT_SUPPORTED for a
   * client the loop dialed.
   */
  write(name: string, payload?: unknown): void;
  /** Finish what runs, then close. */
  close(): Promise<void>;
}

/**
 * A call that arrived: answer it now, or keep it and answer later. Until it
 * is answered it stays charged to its connection's byte budget.
 */
export interface LoopMessage {
  /** The method the client called (`greet`, `timer.now`). */
  readonly method: string;
  /** The decoded params (throws IPCBOR_ERR_INVALID_PARAMS if they are not valid CBOR). */
  params(): unknown;
  /** Its deadline, signal (cancellation) and connection. */
  readonly ctx: IncomingCall['ctx'];
  /** A notification: nobody waits for an answer. */
  readonly oneWay: boolean;
  /** True once answered, cancelled, past its deadline, or its connection closed. */
  readonly done: boolean;
  /**
   * Answer with `value` (an async iterable is sent as a stream). Only the
   * first `reply` or `fail` counts; later ones, and any once `done`, are
   * ignored. For a notification it only ends the call.
   */
  reply(value: unknown): void;
  /**
   * Answer with an error. An IpcborError is sent as it is; an `Error` or a
   * string becomes an IPCBOR_ERR_HANDLER error with its text. Only the first
   * `reply` or `fail` counts.
   */
  fail(err: IpcborError | Error | string): void;
}

/**
 * What the loop hands out.
 *
 * - `connection`: a connection to a server of the loop whose protocol is
 *   known, so `connection.info.protocol` is final: it comes once its hello
 *   was answered (an extended client, which may then be sent events with
 *   `write`) or its first request of the base framing arrived, just
 *   before that request's `message`. A connection that closes before
 *   either gives neither a `connection` nor a `disconnection` event.
 * - `disconnection`: a connection the application saw has closed. `reason`
 *   is undefined for a clean close: either end closed it between two
 *   frames, with no error (the peer closed its socket, `close()`, the idle
 *   timeout). It is an IPCBOR_ERR_CONNECTION_CLOSED for anything else (a
 *   reset, a frame cut short, a protocol error, a frame timeout,
 *   `destroy()`), with the fault as its `cause`. For a client the loop
 *   dialed (`loop.connect`), `reason` is what its `closed` resolved with.
 */
export type LoopEvent =
  | {
      /** A connection whose protocol is known. */
      type: 'connection';
      /** The connection: the same object in its later `message` and `disconnection` events. */
      connection: LoopConnection;
    }
  | {
      /** A connection the application saw has closed. */
      type: 'disconnection';
      /** The connection that closed: one served by the loop, or a client the loop dialed. */
      connection: LoopConnection;
      /** Undefined for a clean close; otherwise an IPCBOR_ERR_CONNECTION_CLOSED with the fault as its `cause`. */
      reason: IpcborError | undefined;
    }
  | {
      /** A call to answer. */
      type: 'message';
      /** The connection the call came on. */
      connection: LoopConnection;
      /** The call: answer it with `reply` or `fail`, now or later. */
      message: LoopMessage;
    }
  | {
      /** The timeout given to `wait` or `events` passed with no other event. */
      type: 'timer';
    }
  | {
      /** Something failed outside any call: a stream added with `add` emitted `'error'`. */
      type: 'error';
      /** What failed: for a stream, an IPCBOR_ERR_CONNECTION_CLOSED with the stream's error as its `cause`. */
      error: IpcborError;
      /** The connection it concerns, when it concerns one. */
      connection?: LoopConnection;
    }
  | {
      /** Data from a stream added with `add`. */
      type: 'external';
      /** The stream, as given to `add`. */
      source: Readable;
      /** A chunk as the stream emitted it (a string if it has an encoding set), or `null` once it ended (it is then removed). */
      data: Buffer | string | null;
    };

/**
 * The options of {@link createLoop}: those of `serve()`, which apply to
 * every address the loop serves, and `handlers`.
 */
export interface LoopOptions extends ServeOptions {
  /**
   * Answer these methods without the loop: a service (or handlers) whose
   * methods run as on the usual server. Everything else reaches the loop
   * as a `message`. `$ipcbor.*` methods are always answered. Default: none,
   * every call is a `message`.
   */
  handlers?: Servable;
}

/**
 * An event loop made by {@link createLoop}: servers, dialed clients and
 * streams of your own, handled one event at a time with `wait` or
 * `for await`. `await using` closes it.
 */
export interface EventLoop extends AsyncIterable<LoopEvent>, AsyncDisposable {
  /**
   * Listen on `address` too (a service name, `unix:PATH`, `tcp:HOST:PORT`,
   * `tls:HOST:PORT`, or several); resolves with where it listens, with real
   * ports. Rejects as `serve()` does (IPCBOR_ERR_INVALID_ADDRESS,
   * IPCBOR_ERR_ALREADY_RUNNING), and with IPCBOR_ERR_SHUTTING_DOWN once the
   * loop is closed.
   */
  serve(address: string | Address | readonly (string | Address)[]): Promise<readonly string[]>;
  /**
   * Connect to a server, as `connect()` does (and rejecting as it does:
   * IPCBOR_ERR_CONNECT, IPCBOR_ERR_INVALID_ADDRESS, …). The client is used
   * directly; its closing comes as a `disconnection` event, and closing the
   * loop closes it.
   */
  connect(address: string | Address, options?: ConnectOptions): Promise<Client>;
  /**
   * The next event, or `{type: 'timer'}` when `timeoutMs` passes with none
   * (no timeout: wait for one). Rejects with IPCBOR_ERR_SHUTTING_DOWN once
   * the loop is closed, a wait under way included.
   */
  wait(timeoutMs?: number): Promise<LoopEvent>;
  /**
   * Deliver the data of a readable stream (stdin, a pipe, a socket of your
   * own) as `external` events, `null` data when it ends; its `'error'`
   * comes as an `error` event. A stream whose chunks pile up untaken is
   * paused until the loop catches up. Adding a stream twice does nothing.
   */
  add(source: Readable): void;
  /** Stop delivering a stream added with `add` (events already queued stay). The stream is not closed. */
  remove(source: Readable): void;
  /**
   * Send event `name` to one connection: `connection.write(name, payload)`.
   * Throws IPCBOR_ERR_NOT_SUPPORTED for a client the loop dialed (call the
   * client instead).
   */
  write(connection: LoopConnection, name: string, payload?: unknown): void;
  /** Send event `name` to every connection of the loop's servers subscribed to it; returns how many. */
  emit(name: string, payload?: unknown): number;
  /**
   * The events as an async iterable, with a `timer` event whenever
   * `timeoutMs` passes with none (no timeout: none): `for await (const ev
   * of loop.events(1000))`. It ends when the loop is closed (from a signal
   * handler, say), where `wait()` would reject. Iterating the loop itself
   * is `events()`.
   */
  events(timeoutMs?: number): AsyncIterableIterator<LoopEvent>;
  /** Events waiting to be taken (a message whose call ended while queued may still count until it is skipped). */
  readonly pending: number;
  /**
   * Stop listening, close the connections and clients, remove the socket
   * files, end iteration. Every call returns the same promise, which
   * resolves once all of that is done.
   */
  close(): Promise<void>;
}

/** External data queued before a source is paused until the loop catches up. */
const EXTERNAL_HIGH_WATER = 64;

/** A client the loop dialed, as a connection event names it. */
interface DialedConnection extends LoopConnection {
  readonly client: Client;
}

/**
 * What the loop holds per message on top of the call (its LoopMessage, its
 * event, the connection's handle): measured about 850 bytes
 * (test/integration/held-costs.test.ts), charged to the message's connection.
 */
const LOOP_MESSAGE_BYTES = 1024;

/**
 * Make an event loop: serve addresses with `loop.serve`, dial with
 * `loop.connect`, add streams with `loop.add`, and take what happens one
 * event at a time with `loop.wait()` or `for await (const ev of loop)`.
 * Every call is handed over as a `message` event (unless `handlers`
 * answers it), and answered with `message.reply` or `message.fail` when
 * the application chooses. It does not listen until `serve` is called.
 *
 * @param options - the options of `serve()` for every address served, and
 *   `handlers` (see {@link LoopOptions})
 * @example
 * ```ts
 * import { createLoop } from 'ipcbor';
 *
 * await using loop = createLoop();
 * await loop.serve('pong');
 * for await (const ev of loop.events(1000)) {
 *   if (ev.type === 'message') ev.message.reply(ev.message.params());
 *   else if (ev.type === 'timer') console.log('a second with nothing to do');
 * }
 * ```
 */
export function createLoop(options: LoopOptions = {}): EventLoop {
  const parked = new ParkedCalls(LOOP_MESSAGE_BYTES);
  const queue: LoopEvent[] = [];
  const waiters: ((ev: LoopEvent | undefined) => void)[] = [];
  const servers: { server: Server; core: ServerCore }[] = [];
  const clients = new Set<Client>();
  const handles = new WeakMap<ConnectionHandle, LoopConnection>();
  /** Connections whose `connection` event has not been taken yet: a close before it drops both. */
  const unseen = new Set<LoopConnection>();
  const sources = new Map<Readable, { data: (d: Buffer | string) => void; end: () => void; error: (e: Error) => void }>();
  let externalQueued = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  const handlers = options.handlers ?? {};

  /** Queue length at which messages whose call ended are swept out. */
  let sweepAt = 64;

  const push = (ev: LoopEvent) => {
    if (closed) return;
    const w = waiters.shift();
    if (w) return take(ev, w);
    queue.push(ev);
    if (queue.length >= sweepAt) {
      // A call cancelled or past its deadline while queued gave its budget
      // back: without a sweep a peer could queue any number of them while
      // the application is busy. Amortized O(1): the next sweep waits until
      // the queue has doubled.
      let kept = 0;
      for (const e of queue) if (!(e.type === 'message' && e.message.done)) queue[kept++] = e;
      queue.length = kept;
      sweepAt = Math.max(64, kept * 2);
    }
  };

  /** Hand `ev` to a waiter, keeping the bookkeeping of what was seen. */
  const take = (ev: LoopEvent, to: (ev: LoopEvent) => void) => {
    if (ev.type === 'connection') unseen.delete(ev.connection);
    if (ev.type === 'external' && ev.data !== null && --externalQueued < EXTERNAL_HIGH_WATER) {
      for (const s of sources.keys()) if (s.isPaused()) s.resume();
    }
    to(ev);
  };

  /** The next event still worth handing out (a message whose call ended while queued is not). */
  const next = (): LoopEvent | undefined => {
    while (queue.length > 0) {
      const ev = queue.shift()!;
      if (ev.type === 'message' && ev.message.done) continue;
      return ev;
    }
    return undefined;
  };

  const handleOf = (c: ConnectionHandle): LoopConnection => {
    let h = handles.get(c);
    if (!h) {
      h = {
        info: c.info,
        write: (name, payload = null) => c.emit(name, payload),
        close: () => c.shutdown(),
      };
      handles.set(c, h);
    }
    return h;
  };

  parked.onParked(() => {
    for (const call of parked.take()) {
      // The protocol's own methods, and those the options name, answer by themselves.
      const core = servers[0]?.core;
      if (call.method.startsWith('$') || (core && options.handlers && core.dispatcher.lookup(call.method))) {
        if (core) dispatch(call, core.dispatcher);
        continue;
      }
      const id = call.ctx.connection.id;
      let owner: ConnectionHandle | undefined;
      for (const s of servers) owner ??= s.core.connection(id);
      push({ type: 'message', connection: owner ? handleOf(owner) : detached(call), message: messageOf_(call) });
    }
  });

  const loop: EventLoop = {
    async serve(address) {
      if (closed) throw new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the loop is closed');
      const s = await serveWith(handlers, address, options, parked.executor, true);
      if (closed) {
        // Closed while it was starting (a signal at start-up): it must not outlive the loop.
        await s.server.close();
        throw new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the loop is closed');
      }
      servers.push(s);
      s.core.onReady((c) => {
        const h = handleOf(c);
        unseen.add(h);
        push({ type: 'connection', connection: h });
      });
      s.core.onDisconnect((c, reason) => {
        const h = handles.get(c);
        // Never announced (its protocol never became known): nothing to tell.
        if (!h) return;
        if (unseen.delete(h)) {
          // Never seen by the application: it need not hear of it going either.
          const i = queue.findIndex((e) => e.type === 'connection' && e.connection === h);
          if (i >= 0) queue.splice(i, 1);
          return;
        }
        push({ type: 'disconnection', connection: h, reason });
      });
      return s.server.addresses;
    },

    async connect(address, connectOptions) {
      const client = await connect(address, connectOptions);
      clients.add(client);
      const h: DialedConnection = {
        client,
        info: { id: 0, transport: 'client', protocol: client.protocol, remote: client.address },
        write: () => {
          throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'write() sends events to connections the loop serves; call the client instead');
        },
        close: () => client.close(),
      };
      void client.closed.then((reason) => {
        clients.delete(client);
        push({ type: 'disconnection', connection: h, reason });
      });
      return client;
    },

    wait(timeoutMs) {
      const ev = next();
      if (ev) return Promise.resolve(ev).then((e) => (take(e, () => undefined), e));
      if (closed) return Promise.reject(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the loop is closed'));
      return new Promise<LoopEvent>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const w = (e: LoopEvent | undefined) => {
          if (timer !== undefined) clearTimeout(timer);
          if (e === undefined) reject(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the loop is closed'));
          else resolve(e);
        };
        waiters.push(w);
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i >= 0) waiters.splice(i, 1);
            resolve({ type: 'timer' });
          }, Math.max(0, timeoutMs));
        }
      });
    },

    add(source) {
      if (sources.has(source)) return;
      const on = {
        data: (data: Buffer | string) => {
          externalQueued++;
          if (externalQueued >= EXTERNAL_HIGH_WATER) source.pause();
          push({ type: 'external', source, data });
        },
        end: () => {
          loop.remove(source);
          push({ type: 'external', source, data: null });
        },
        error: (e: Error) => push({ type: 'error', error: new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `an external source failed: ${messageOf(e)}`, { cause: e }) }),
      };
      sources.set(source, on);
      source.on('data', on.data);
      source.on('end', on.end);
      source.on('error', on.error);
    },

    remove(source) {
      const on = sources.get(source);
      if (!on) return;
      sources.delete(source);
      source.off('data', on.data);
      source.off('end', on.end);
      source.off('error', on.error);
    },

    write(connection, name, payload) {
      connection.write(name, payload);
    },

    emit(name, payload = null) {
      let n = 0;
      for (const s of servers) n += s.core.emit(name, payload);
      return n;
    },

    get pending() {
      return queue.length;
    },

    close() {
      closing ??= closeOnce();
      return closing;
    },

    events(timeoutMs) {
      const it: AsyncIterableIterator<LoopEvent> = {
        next: () =>
          loop.wait(timeoutMs).then(
            (value) => ({ value, done: false as const }),
            (err: unknown) => {
              if (closed) return { value: undefined, done: true as const };
              throw err;
            },
          ),
        return: async () => ({ value: undefined, done: true as const }),
        [Symbol.asyncIterator]: () => it,
      };
      return it;
    },

    [Symbol.asyncIterator]() {
      return loop.events();
    },

    [Symbol.asyncDispose]() {
      return loop.close();
    },
  };

  async function closeOnce(): Promise<void> {
    closed = true;
    for (const source of [...sources.keys()]) loop.remove(source);
    for (const w of waiters.splice(0)) w(undefined);
    // Messages nobody took never started: refused like calls arriving during a shutdown.
    for (const ev of queue.splice(0)) {
      if (ev.type === 'message' && !ev.message.done) ev.message.fail(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down'));
    }
    await Promise.all([...servers.map((s) => s.server.close()), ...[...clients].map((c) => c.close())]);
  }
  return loop;
}

/** A message's connection when it is already gone from the server's table. */
function detached(call: IncomingCall): LoopConnection {
  return {
    info: call.ctx.connection,
    write: () => {
      throw new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection closed');
    },
    close: () => Promise.resolve(),
  };
}

function messageOf_(call: IncomingCall): LoopMessage {
  return {
    method: call.method,
    params: () => call.params(),
    ctx: call.ctx,
    oneWay: call.oneWay === true,
    get done() {
      return call.done;
    },
    reply: (value) => call.reply(value),
    fail: (err) => call.fail(asIpcborError(err, { method: call.method, code: 'IPCBOR_ERR_HANDLER' })),
  };
}
