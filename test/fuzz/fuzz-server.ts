/**
 * The server the fuzzers hit, in a child process (its memory is its own to
 * measure, and a crash kills only it). Same contract as
 * test/attack/attack-server.ts (argv[2] is `{ address, options }`, prints
 * `{"address": …, "pid": …}` once it listens), but every handler here is
 * bounded whatever params it gets: random bytes must not be able to ask a
 * handler for a billion events (the application's own handler bugs are out
 * of scope, see SECURITY.md), so what is measured is ipcbor alone.
 *
 * Methods: `version`, `mem` (memory after GC), `conns` (connections open),
 * `echo`, `greet` (schema-checked params), `slow({ms})` (at most 200 ms),
 * `hang()` (until its signal aborts), `stream({n, size})` (at most 50 items
 * of 16 KiB), `fire({n, size})` (at most 50 `tick` events of 16 KiB),
 * `sum` (takes a stream of params), `fail()` (throws).
 */
import { defineService, method, s, serve, serviceOf, type ServeOptions } from '../../src/index.js';
import type { CallContext } from '../../src/core/dispatcher.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { address: string; options?: ServeOptions };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc;
/** A number param clamped to [0, max] (anything else: `dflt`). */
const clamp = (v: unknown, max: number, dflt: number): number => (typeof v === 'number' && Number.isFinite(v) ? Math.max(0, Math.min(max, Math.floor(v))) : dflt);
const field = (p: unknown, k: string): unknown => (p !== null && typeof p === 'object' ? (p as Record<string, unknown>)[k] : undefined);

let connections = () => 0;

const svc = defineService({
  name: 'fuzz',
  version: '1.0.0',
  methods: {
    version: method({ handler: () => '1.0.0' }),
    mem: method({
      handler: () => {
        // Twice: the second GC first finishes sweeping the ArrayBuffers the first one freed.
        gc?.();
        gc?.();
        return process.memoryUsage();
      },
    }),
    conns: method({ handler: () => connections() }),
    echo: method({ handler: (params: unknown) => params }),
    greet: method({
      params: s.object({ name: s.string(), times: s.optional(s.int()) }),
      handler: ({ name, times }) => `hello ${name}`.repeat(clamp(times, 4, 1)),
    }),
    slow: method({
      handler: async (params: unknown) => {
        await sleep(clamp(field(params, 'ms'), 200, 20));
        return null;
      },
    }),
    hang: method({ handler: (_params: unknown, ctx: CallContext) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true })) }),
    stream: method({
      handler: async function* (params: unknown) {
        const n = clamp(field(params, 'n'), 50, 5);
        const size = clamp(field(params, 'size'), 16 * 1024, 16);
        for (let i = 0; i < n; i++) yield new Uint8Array(size);
      },
    }),
    fire: method({
      handler: (params: unknown) => {
        const n = clamp(field(params, 'n'), 50, 1);
        const pad = new Uint8Array(clamp(field(params, 'size'), 16 * 1024, 16));
        for (let i = 0; i < n; i++) serviceOf(svc).emit('tick', { i, pad });
        return n;
      },
    }),
    sum: method({
      handler: async (params: unknown) => {
        let total = 0;
        for await (const x of params as AsyncIterable<unknown>) total += typeof x === 'number' ? x : 1;
        return total;
      },
    }),
    fail: method({
      handler: () => {
        throw new Error('failed on purpose');
      },
    }),
  },
  events: { tick: null },
});

const server = await serve(svc, config.address, config.options ?? {});
connections = () => server.connections;
process.stdout.write(`${JSON.stringify({ address: server.addresses[0], pid: process.pid })}\n`);
// The test kills us; a closed stdin (the test process died) ends us too.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
