/**
 * Memory per idle connection: one server (bench/idle-server.ts, forked with
 * --expose-gc) holds BENCH_IDLE connections (default 10,000) on a unix
 * socket, and its memory after GC is measured before they open and once
 * they sit idle. Three kinds of connection, one after the other:
 *
 *   node       a bare `net` server's socket, never sent a byte (the floor: Node's own cost)
 *   raw        connected, never sent a byte
 *   base       a base-framing client (`protocol: 'base'`) that made one call
 *   extended   a client that completed the hello and made one call
 *
 * Run by `npm run bench` (after the throughput table; BENCH_ONLY=idle runs
 * it alone) or on its own: `npm run bench:idle` / node dist/bench/idle.js [--json].
 */
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect, IpcborError, type Client } from '../src/index.js';
import { cleanup, cleanupOnExit, startServer, type ServerProcess } from './processes.js';

export interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface IdleRow {
  kind: 'node' | 'raw' | 'base' | 'extended';
  title: string;
  connections: number;
  openMs: number;
  /** Retries of a connect refused by a full listen backlog (EAGAIN). */
  retries: number;
  before: Mem;
  after: Mem;
  /** Bytes per connection, after minus before, divided by the connections. */
  perConnection: Mem & { held: number };
}

/** Target of issue 9: at most this much per idle connection (JS heap and buffers). */
export const IDLE_TARGET_BYTES = 4096;

const KINDS: { kind: IdleRow['kind']; title: string }[] = [
  { kind: 'node', title: 'bare net server, nothing sent' },
  { kind: 'raw', title: 'connected, nothing sent' },
  { kind: 'base', title: 'base-framing client, one call made' },
  { kind: 'extended', title: 'hello done, one call made' },
];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const progress = (line: string) => process.stderr.write(`${line}\n`);

let nextId = 1;
function ask<T>(server: ServerProcess, type: 'mem' | 'conns'): Promise<T> {
  const id = nextId++;
  return new Promise((resolve) => {
    const on = (m: { id?: number; mem?: Mem; conns?: number }) => {
      if (m.id !== id) return;
      server.child.off('message', on);
      resolve((type === 'mem' ? m.mem : m.conns) as T);
    };
    server.child.on('message', on);
    server.child.send({ type, id });
  });
}

const held = (m: Mem) => m.heapUsed + m.arrayBuffers;

/** The lowest of three samples (a GC's timing only ever adds). */
async function memOf(server: ServerProcess): Promise<Mem> {
  let best = await ask<Mem>(server, 'mem');
  for (let i = 0; i < 2; i++) {
    const m = await ask<Mem>(server, 'mem');
    if (held(m) < held(best)) best = { ...m, rss: Math.min(m.rss, best.rss) };
  }
  return best;
}

async function waitConns(server: ServerProcess, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await ask<number>(server, 'conns');
    if (c === n) return;
    if (Date.now() > deadline) throw new Error(`the server holds ${c} connections, expected ${n}`);
    await sleep(50);
  }
}

function rawSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.removeAllListeners('error');
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A full listen backlog: a unix socket refuses with EAGAIN where TCP would queue. */
function retryable(err: unknown): boolean {
  const e = err instanceof IpcborError ? (err.cause as { code?: string } | undefined) : (err as { code?: string });
  return e?.code === 'EAGAIN' || e?.code === 'ECONNREFUSED';
}

interface Held {
  close(): void;
}

async function openAll(kind: IdleRow['kind'], server: ServerProcess, n: number): Promise<{ held: Held[]; retries: number }> {
  let retries = 0;
  const one = async (): Promise<Held> => {
    for (let attempt = 0; ; attempt++) {
      try {
        if (kind === 'raw' || kind === 'node') {
          const s = await rawSocket(kind === 'node' ? `${server.socketPath}.plain` : server.socketPath);
          return { close: () => s.destroy() };
        }
        const c: Client = await connect(server.address, { protocol: kind === 'base' ? 'base' : 'auto' });
        await c.call('echo', { n: 1 });
        return { close: () => c.destroy() };
      } catch (err) {
        if (!retryable(err) || attempt >= 100) throw err;
        retries++;
        await sleep(5 + attempt * 5);
      }
    }
  };
  const held: Held[] = [];
  const batch = kind === 'raw' || kind === 'node' ? 500 : 250;
  for (let i = 0; i < n; i += batch) {
    held.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, one))));
  }
  return { held, retries };
}

/** Start a server, measure each kind of idle connection, stop it. */
export async function idleBench(n = Number(process.env.BENCH_IDLE ?? 10_000)): Promise<IdleRow[]> {
  const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
  const server = await startServer(here('./idle-server.js'), 'idle', ['--expose-gc']);
  const rows: IdleRow[] = [];
  try {
    // Warm up: the first connections and calls compile what every later one uses.
    const warm = await openAll('extended', server, 50);
    for (const h of warm.held) h.close();
    for (const k of ['raw', 'node'] as const) for (const h of (await openAll(k, server, 50)).held) h.close();
    await waitConns(server, 0);
    for (const { kind, title } of KINDS) {
      const before = await memOf(server);
      const t0 = performance.now();
      const { held: conns, retries } = await openAll(kind, server, n);
      const openMs = performance.now() - t0;
      await waitConns(server, n);
      // Let them sit: whatever the server frees after a connection settles is freed.
      await sleep(1000);
      const after = await memOf(server);
      const per = (k: keyof Mem) => (after[k] - before[k]) / n;
      const perConnection = { rss: per('rss'), heapUsed: per('heapUsed'), external: per('external'), arrayBuffers: per('arrayBuffers'), held: (held(after) - held(before)) / n };
      rows.push({ kind, title, connections: n, openMs, retries, before, after, perConnection });
      progress(`  idle ${kind.padEnd(8)} ${n} connections: ${Math.round(perConnection.held)} B/conn heap+buffers, ${Math.round(perConnection.rss)} B/conn rss`);
      for (const c of conns) c.close();
      await waitConns(server, 0);
    }
  } finally {
    await server.stop();
  }
  return rows;
}

const kib = (b: number) => `${(b / 1024).toFixed(2)} KiB`;

export function printIdle(rows: IdleRow[]): void {
  const head = ['idle connections', 'count', 'heap+buffers / conn', 'heapUsed / conn', 'arrayBuffers / conn', 'external / conn', 'rss / conn', 'target'];
  const lines = rows.map((r) => [
    `${r.kind}: ${r.title}`,
    r.connections.toLocaleString('en-US'),
    kib(r.perConnection.held),
    kib(r.perConnection.heapUsed),
    kib(r.perConnection.arrayBuffers),
    kib(r.perConnection.external),
    kib(r.perConnection.rss),
    `<= ${kib(IDLE_TARGET_BYTES)} ${r.perConnection.held <= IDLE_TARGET_BYTES ? 'PASS' : 'over'}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  console.log(row(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const l of lines) console.log(row(l));
  console.log('');
  console.log('Server memory after GC, with the connections open minus before they opened, per connection. heap+buffers = heapUsed + arrayBuffers');
  console.log("(what the target counts); rss also holds the socket's libuv handle and freed pages not yet returned. Kernel socket buffers are not counted.");
  console.log("node = a bare net server in the same process that only holds its sockets: what Node itself costs; ipcbor's own share is the difference.");
}

// Run on its own: node dist/bench/idle.js [--json]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  cleanupOnExit();
  idleBench().then(
    (rows) => {
      if (process.argv.includes('--json')) console.log(JSON.stringify({ node: process.version, idle: rows }, null, 2));
      else printIdle(rows);
      cleanup();
    },
    (err: unknown) => {
      console.error('idle bench failed:', err);
      cleanup();
      process.exitCode = 1;
    },
  );
}
