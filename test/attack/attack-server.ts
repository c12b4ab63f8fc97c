/**
 * The server the attack tests hit, run in a child process so that its
 * memory can be measured on its own (and an attack that kills it kills only
 * it). Usage: node [--expose-gc] attack-server.js '<json>' where json is
 * `{ address, kind?: 'handlers' | 'service', options?: ServeOptions }`.
 * Prints `{"address": …, "pid": …}` on one line once it listens.
 *
 * Methods: `version`, `mem` and `lag` (take no params: never decoded), `echo`,
 * `slow({ms})`, `hang()` (until its signal aborts), `stream({n, size})`,
 * `fire({n, size, name?})` (emits n events of `size` bytes, each `{seq, pad}`).
 * `kind: 'handlers'` serves a plain object (any event name may be
 * subscribed); `kind: 'service'` serves a service that declares only `tick`.
 */
import { defineService, method, serve, serviceOf, type ServeOptions, type Server } from '../../src/index.js';
import type { CallContext } from '../../src/core/server/dispatcher.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';

interface Config {
  address: string;
  kind?: 'handlers' | 'service';
  options?: ServeOptions;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let emit: (name: string, payload: unknown) => void = () => {};
let seq = 0;
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

const handlers = {
  version: () => '1.0.0',
  mem: () => {
    // Twice: the second GC first finishes sweeping the ArrayBuffers the first one freed.
    (globalThis as { gc?: () => void }).gc?.();
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage();
  },
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
  hang: (_params: unknown, ctx: CallContext) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true })),
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
} else {
  server = await serve(handlers, config.address, config.options ?? {});
  emit = (name, payload) => server.emit(name, payload);
}

process.stdout.write(`${JSON.stringify({ address: server.addresses[0], pid: process.pid })}\n`);
// The test kills us; a closed stdin (the test process died) ends us too.
process.stdin.on('end', () => server.destroy());
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
