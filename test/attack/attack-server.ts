/**
 * The server the attack tests hit, run in a child process so that its
 * memory can be measured on its own (and an attack that kills it kills only
 * it). Usage: node [--expose-gc] attack-server.js '<json>' where json is
 * `{ address, kind?: 'handlers' | 'service', options?: ServeOptions,
 * server?: 'serve' | 'lazy' | 'loop', control?: address }`.
 * Prints `{"address": …, "pid": …}` on one line once it listens.
 *
 * Methods: `version`, `mem`, `lag` and `stats` (take no params: never
 * decoded), `echo`, `slow({ms})`, `hang()` (until its signal aborts),
 * `hold(params)` (keeps its params until its signal aborts: the connection
 * went), `sink(stream)` (a streamed call whose items it never reads),
 * `app()` (what the application itself answers), `stream({n, size})`,
 * `fire({n, size, name?})` (emits n events of `size` bytes, each `{seq, pad}`).
 * `kind: 'handlers'` serves a plain object (any event name may be
 * subscribed); `kind: 'service'` serves a service that declares only `tick`.
 *
 * `server` picks what serves them (for the attack matrix):
 * - `serve` (default): serve();
 * - `lazy`: serveLazy(), whose application never polls unless told to (the
 *   control server's `poll`): every call waits, parked;
 * - `loop`: createLoop(), whose application takes every message at once,
 *   answers `app` and keeps the others unanswered (it has not got to them
 *   yet) until their call ends; `version`, `mem`, `lag`, `stats` and
 *   `stream` are handlers of the loop, answered without it.
 * With `control`, a plain server there (not attacked, its budget not
 * reported) answers `stats`, `mem`, `reset` (the peak starts again from
 * what is held now), `poll` (lazy: run the parked calls), `release` (the
 * application gets to everything it held: parked calls run, `hold` and
 * `sink` calls end, the loop answers the messages it kept) and
 * `fire({n, size})` (emit n events `tick` whose payload is a byte string
 * of exactly `size` bytes encoded).
 *
 * `stats` reports the attacked server's byte budget (held, peak since the
 * last reset, limit), the bytes its sockets have read (in all, and the
 * most one socket read since the reset) and the waiting connections its
 * budget's wakes called back since the reset. A budget that goes below zero
 * anywhere prints the violation and exits with code 86 (NEGATIVE_EXIT).
 */
import { Server as NetServer, type Socket } from 'node:net';
import { createLoop, defineService, method, serve, serveLazy, serviceOf, type LazyServer, type LoopMessage, type ServeOptions, type Server } from '../../src/index.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { budgetAudit, type ServerBudget } from '../../src/core/peer/budget.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { NEGATIVE_EXIT, padOf, type Stats } from './matrix-shared.js';

interface Config {
  address: string;
  kind?: 'handlers' | 'service';
  options?: ServeOptions;
  server?: 'serve' | 'lazy' | 'loop';
  control?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let emit: (name: string, payload: unknown) => void = () => {};
let seq = 0;
let poll: () => number = () => 0;
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

budgetAudit.negative = (what, held) => {
  process.stderr.write(`attack-server: a ${what} budget went negative (${held} bytes)\n`);
  process.exit(NEGATIVE_EXIT);
};
// The attacked server's budget: the only one made while the set is there.
const budgets = new Set<ServerBudget>();
budgetAudit.servers = budgets;
let rechecks = 0;
budgetAudit.woke = (n) => void (rechecks += n);

// The bytes read from the attacked server's sockets (those of the listeners
// made while `attacked` is true), counted at the socket: what the server
// took, whether or not it reached the budget.
let attacked = true;
const listeners = new WeakSet<NetServer>();
const live = new Set<Socket>();
let readByClosed = 0;
let readMark = 0;
const listenOf = NetServer.prototype.listen as (this: NetServer, ...args: unknown[]) => NetServer;
NetServer.prototype.listen = function (this: NetServer, ...args: unknown[]) {
  if (attacked) listeners.add(this);
  return listenOf.apply(this, args);
} as typeof NetServer.prototype.listen;
const emitOf = NetServer.prototype.emit as (this: NetServer, event: string | symbol, ...args: unknown[]) => boolean;
NetServer.prototype.emit = function (this: NetServer, event: string | symbol, ...args: unknown[]) {
  if (event === 'connection' && listeners.has(this)) {
    const socket = args[0] as Socket;
    live.add(socket);
    socket.once('close', () => {
      live.delete(socket);
      readByClosed += socket.bytesRead;
    });
  }
  return emitOf.call(this, event, ...args);
} as typeof NetServer.prototype.emit;
const bytesRead = () => readByClosed + [...live].reduce((sum, s) => sum + s.bytesRead, 0);

const gcMem = () => {
  // Twice: the second GC first finishes sweeping the ArrayBuffers the first one freed.
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
};

/** The lazy server's parked calls, or the loop's messages kept unanswered. */
let waiting = () => 0;

const stats = (): Stats => {
  const [budget] = budgets;
  let maxSocket = 0;
  for (const s of live) maxSocket = Math.max(maxSocket, s.bytesRead - ((s as { readMark?: number }).readMark ?? 0));
  return {
    held: budget?.held ?? 0,
    peak: budget?.peak ?? 0,
    limit: budget?.limit ?? 0,
    bytesRead: bytesRead() - readMark,
    maxSocketRead: maxSocket,
    sockets: live.size,
    waiting: waiting(),
    rechecks,
  };
};

const untilAborted = (ctx: CallContext) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true }));

/** Calls held by `hold` and `sink`, ended by the control server's `release`. */
const held = new Set<() => void>();
/** Until the call ends, or until `release`. */
const untilReleased = (ctx: CallContext) =>
  new Promise((resolve) => {
    const done = () => {
      held.delete(done);
      resolve(null);
    };
    held.add(done);
    ctx.signal.addEventListener('abort', done, { once: true });
  });
/** What `release` does besides ending the held calls (the loop answers what it kept). */
let releaseApp: () => void = () => {};

const handlers = {
  version: () => '1.0.0',
  mem: () => gcMem(),
  stats: () => stats(),
  /** The longest the event loop was blocked since the last call (ms, to the resolution of 10 ms). */
  lag: () => {
    const ms = delay.max / 1e6;
    delay.reset();
    return ms;
  },
  echo: (params: unknown) => params,
  // Holds its params until it answers, as a handler that works on them would.
  slow: async (params: { ms?: number; pad?: Uint8Array } | undefined) => {
    await sleep(Math.min(params?.ms ?? 100, 60_000));
    return params?.pad?.length ?? null;
  },
  hang: (_params: unknown, ctx: CallContext) => untilAborted(ctx),
  // Holds its params (whatever they are) until the call ends: its connection went.
  hold: async (params: unknown, ctx: CallContext) => {
    await untilReleased(ctx);
    return params === undefined ? null : 0;
  },
  // A streamed call whose items are never read (until the call ends, or release).
  sink: (_items: AsyncIterable<unknown>, ctx: CallContext) => untilReleased(ctx),
  app: () => 'app',
  // Each item is made when it is asked for: what the server holds is what it queued.
  stream: async function* (params: { n?: number; size?: number }) {
    const n = params?.n ?? 10;
    for (let i = 0; i < n; i++) yield new Uint8Array(params?.size ?? 1024);
  },
  fire: (params: { n?: number; size?: number; name?: string }) => {
    const n = params?.n ?? 1;
    const pad = new Uint8Array(params?.size ?? 1024);
    for (let i = 0; i < n; i++) emit(params?.name ?? 'tick', { seq: seq++, pad });
    return n;
  },
};

let server: Server;
const mode = config.server ?? 'serve';
if (config.kind === 'service') {
  const svc = defineService({
    name: 'attack',
    version: '1.0.0',
    methods: {
      version: method({ handler: handlers.version }),
      mem: method({ handler: handlers.mem }),
      lag: method({ handler: handlers.lag }),
      echo: method({ handler: handlers.echo }),
      slow: method({ handler: handlers.slow }),
      hang: method({ handler: handlers.hang }),
      stream: method({ handler: handlers.stream }),
      fire: method({ handler: handlers.fire }),
    },
    events: { tick: null },
  });
  server = await serve(svc, config.address, config.options ?? {});
  emit = (name, payload) => serviceOf(svc).emit(name as 'tick', payload as never);
} else if (mode === 'lazy') {
  const lazy: LazyServer = await serveLazy(handlers, config.address, config.options ?? {});
  server = lazy;
  emit = (name, payload) => lazy.emit(name, payload);
  waiting = () => lazy.pending;
  poll = () => lazy.handleNewMessages();
} else if (mode === 'loop') {
  server = await serveLoop();
} else {
  server = await serve(handlers, config.address, config.options ?? {});
  emit = (name, payload) => server.emit(name, payload);
}
budgetAudit.servers = undefined;
attacked = false;

let control: Server | undefined;
if (config.control) {
  control = await serve(
    {
      stats: () => stats(),
      mem: () => gcMem(),
      reset: () => {
        for (const b of budgets) b.peak = b.held;
        rechecks = 0;
        readMark = bytesRead();
        for (const s of live) (s as { readMark?: number }).readMark = s.bytesRead;
        return null;
      },
      poll: () => poll(),
      // The application gets to what it held: parked calls run, held calls and kept messages are answered.
      release: () => {
        const n = poll();
        for (const done of [...held]) done();
        releaseApp();
        return n;
      },
      fire: (params: { n: number; size: number }) => {
        const pad = padOf(params.size);
        for (let i = 0; i < params.n; i++) emit('tick', pad);
        return params.n;
      },
    },
    config.control,
  );
}

/**
 * The event loop's application: takes every event as it comes, answers
 * `app`, keeps every other message unanswered, and forgets those whose
 * call ended (their connection went) at each disconnection.
 */
async function serveLoop(): Promise<Server> {
  const { version, mem, lag, stream } = handlers;
  const loop = createLoop({ ...(config.options ?? {}), handlers: { version, mem, lag, stats: handlers.stats, stream } });
  const addresses = await loop.serve(config.address);
  let kept: LoopMessage[] = [];
  let sweeping = false;
  waiting = () => kept.length;
  releaseApp = () => {
    for (const m of kept.splice(0)) if (!m.done) m.reply(null);
  };
  emit = (name, payload) => loop.emit(name, payload);
  void (async () => {
    for await (const ev of loop) {
      if (ev.type === 'message') {
        if (ev.message.method === 'app') ev.message.reply('app');
        else kept.push(ev.message);
      } else if (ev.type === 'disconnection' && !sweeping) {
        // Once for a wave of disconnections, not once each.
        sweeping = true;
        setImmediate(() => {
          sweeping = false;
          kept = kept.filter((m) => !m.done);
        });
      }
    }
  })();
  return {
    addresses,
    get connections() {
      return live.size;
    },
    emit: (name, payload) => loop.emit(name, payload),
    close: () => loop.close(),
    destroy: () => void loop.close(),
    [Symbol.asyncDispose]: () => loop.close(),
  };
}

process.stdout.write(`${JSON.stringify({ address: server.addresses[0], pid: process.pid, ...(control ? { control: control.addresses[0] } : {}) })}\n`);
// The test kills us; a closed stdin (the test process died) ends us too.
process.stdin.on('end', () => server.destroy());
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
