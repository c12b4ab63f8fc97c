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
 * `sum` (takes a stream of params), `fail()` (throws), `leftover` (the
 * state of every connection but the caller's: what a failed check prints).
 */
import type { Socket } from 'node:net';
import { defineService, method, s, serviceOf } from '../../src/index.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import type { ServerConnection } from '../../src/core/server/connection.js';
import { serveWith, type ServeOptions } from '../../src/node/server.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { address: string; options?: ServeOptions };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc;
/** A number param clamped to [0, max] (anything else: `dflt`). */
const clamp = (v: unknown, max: number, dflt: number): number => (typeof v === 'number' && Number.isFinite(v) ? Math.max(0, Math.min(max, Math.floor(v))) : dflt);
const field = (p: unknown, k: string): unknown => (p !== null && typeof p === 'object' ? (p as Record<string, unknown>)[k] : undefined);

let connections = () => 0;
/** Every connection open, to say what holds one that should have gone. */
const open = new Set<ServerConnection>();

/**
 * What keeps a connection open, from the inside (test code: private
 * fields read as they are): its phase and calls, its budget, its flow
 * control (reading, delivering, why not), its decoder, and its socket
 * (paused, what Node buffered, whether the peer's FIN was read).
 */
function stateOf(c: ServerConnection): Record<string, unknown> {
  const peer = c.peer;
  const flow = peer.flow as unknown as Record<string, unknown>;
  const socket = (peer.transport as { socket?: Socket }).socket;
  const rs = (socket as unknown as { _readableState?: { ended?: boolean; endEmitted?: boolean } } | undefined)?._readableState;
  const handle = (socket as unknown as { _handle?: { reading?: boolean } | null } | undefined)?._handle;
  const conn = c as unknown as { calls: Map<number, { method: string }>; slots: { method: string }[]; running?: Set<{ method: string }>; eventBacklog: unknown[] };
  return {
    id: c.info.id,
    phase: `${peer.phase.framing}/${peer.phase.stage}`,
    quiet: c.quiet,
    calls: [...conn.calls.values()].map((x) => x.method),
    slots: conn.slots.map((x) => x.method),
    running: [...(conn.running ?? [])].map((x) => x.method),
    events: conn.eventBacklog.length,
    held: peer.budget.held,
    limit: peer.budget.limit,
    serverHeld: peer.budget.server?.held,
    flow: { reading: flow.reading, delivering: flow.delivering, yielding: flow.yielding, writeBlocked: flow.writeBlocked, unsent: flow.unsent, holdsReading: c.holdsReading() },
    decoder: { held: peer.decoder.heldBytes, idle: peer.decoder.idle },
    socket: socket && {
      paused: socket.isPaused(),
      flowing: socket.readableFlowing,
      bytesRead: socket.bytesRead,
      readableLength: socket.readableLength,
      finRead: rs?.ended,
      endEmitted: rs?.endEmitted,
      handleReading: handle?.reading,
      writableLength: socket.writableLength,
      writableEnded: socket.writableEnded,
      destroyed: socket.destroyed,
    },
  };
}

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
    leftover: method({ handler: (_params: unknown, ctx: CallContext) => [...open].filter((c) => c.info.id !== ctx.connection.id).map(stateOf) }),
  },
  events: { tick: null },
});

const { server, core } = await serveWith(svc, config.address, config.options ?? {}, undefined);
connections = () => server.connections;
core.onConnect((c) => {
  const conn = c as ServerConnection;
  open.add(conn);
  void conn.closed.then(() => open.delete(conn));
});
process.stdout.write(`${JSON.stringify({ address: server.addresses[0], pid: process.pid })}\n`);
// The test kills us; a closed stdin (the test process died) ends us too.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
