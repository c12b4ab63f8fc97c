/**
 * `npm run bench`: ipcbor against the raw `net` loop (the Node limit for its
 * framing), the raw loop with ipcbor's codec and with cbor-x, and the Node
 * IPC libraries people use (vscode-jsonrpc, @grpc/grpc-js, zeromq,
 * node-ipc), side by side in one run, and ipcbor through its relay (TCP) and
 * WebSocket bridge. Each system's server runs in its own forked process, and
 * so does a relay in front of one. Each cell's client runs in a fresh
 * process of its own (bench/cell-client.ts), so no system's client shares
 * a heap or JIT state with another's; this process only orchestrates, and
 * is idle during the measured windows. Unix sockets in a temp dir (the
 * relays listen on loopback TCP ports). Every cell reports calls/s, CPU
 * per call (client and servers, each read in its own process), and on W1,
 * W4, W5 and W6 p50/p99 latency; W6 (10,000 paced connections) also the
 * server's memory. After the repeated cells come the paired rounds:
 * on each workload a target names, ipcbor extended and the systems it is
 * judged against measure short windows in turn, several rounds, and
 * ipcbor's targets are judged on them at the end (bench/targets.ts).
 *
 *   node dist/bench/run.js [--workloads W1,W2] [--systems raw,extended,grpc]
 *                          [--seconds S] [--warmup S] [--repeats N]
 *                          [--paired-sessions N] [--paired-rounds N] [--paired-ms MS]
 *                          [--json FILE] [--svg FILE]
 *
 * Environment (flags win):
 *   BENCH_ONLY         workloads, e.g. "W1,W3" (default all: W1-W6)
 *   BENCH_SYSTEMS      systems, e.g. "raw,extended" (BENCH_IMPLS too); default
 *                      raw, rawcodec, rawcborx, extended, base, relay, bridge,
 *                      jsonrpc, grpc, zeromq, nodeipc (add rawcborg for the raw
 *                      loop with cborg)
 *   BENCH_SECONDS      measured seconds per cell (default 2; the full run takes
 *                      about 17 minutes on a 2-core machine, paired rounds included)
 *   BENCH_WARMUP       warm-up seconds per cell (default 2: each cell's client
 *                      is a fresh process, whose JIT settles in it)
 *   BENCH_REPEATS      repeats per cell, the median is reported (default 3).
 *                      W6 is measured once per system with its own 1 s warm-up
 *                      and 3 s window (workloads.ts), after the repeats.
 *   BENCH_PAIRED_SESSIONS  sessions of the paired measurement, each with fresh
 *                      client processes (default 3)
 *   BENCH_PAIRED_ROUNDS  rounds per session (default 4; 0: no paired
 *                      measurement, the targets are then judged on the cells' medians)
 *   BENCH_PAIRED_MS    each paired window, ms (default 750)
 *   BENCH_JSON, BENCH_SVG  output files. With the default selection they
 *                      default to bench/results/latest.json and latest.svg;
 *                      a partial run writes them only when asked.
 *   BENCH_IDLE         0: skip the idle-memory section (bench/idle.js)
 *   BENCH_PROFILE_DIR  run the servers with --cpu-prof, profiles written there
 *   BENCH_PIN          0: do not pin; by default (with >= 2 CPUs and taskset)
 *                      this process and the cells' clients run on CPU 0 and
 *                      the servers (relays included) on CPU 1
 *   BENCH_RELAY_CPU    when pinned, the CPU of the relay processes instead of
 *                      the servers' (e.g. 0: beside the clients)
 *
 * Progress goes to stderr; the tables to stdout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CellClose, CellDone, CellJob, CellProbe, CellProbed, CellReady, CellWindow, CellWindowDone } from './cell-client.js';
import type { ServerUsage } from './child.js';
import { cleanup, cleanupOnExit, forkBench, pinSelf, startServers, type ServerProcess } from './processes.js';
import { median, renderSvg, renderTables, type CellReport, type Mem, type PairedGroup, type PairedSeries, type Report, type SystemReport } from './report.js';
import { DEFAULT_SYSTEMS, SYSTEM_IDS, SYSTEMS, type ServerSpec, type System, type SystemId } from './systems.js';
import { SUBJECT, cpuPerCall, judge, referencesOn } from './targets.js';
import { WORKLOADS, offered, sleep, type Measured, type Workload } from './workloads.js';

const env = process.env;
const argv = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}
const list = (s: string | undefined) => s?.split(',').map((x) => x.trim()).filter(Boolean);

const seconds = Number(flag('seconds') ?? env.BENCH_SECONDS ?? 2);
const warmup = Number(flag('warmup') ?? env.BENCH_WARMUP ?? 2);
const repeats = Math.max(1, Math.floor(Number(flag('repeats') ?? env.BENCH_REPEATS ?? 3)));
const wantWorkloads = list(flag('workloads') ?? env.BENCH_ONLY ?? env.BENCH_WORKLOADS);
const wantSystems = list(flag('systems') ?? env.BENCH_SYSTEMS ?? env.BENCH_IMPLS);
for (const w of wantWorkloads ?? []) if (!WORKLOADS.some((x) => x.id === w)) throw new Error(`unknown workload ${w} (have ${WORKLOADS.map((x) => x.id).join(', ')})`);
for (const s of wantSystems ?? []) if (!(SYSTEM_IDS as readonly string[]).includes(s)) throw new Error(`unknown system ${s} (have ${SYSTEM_IDS.join(', ')})`);
const workloads = WORKLOADS.filter((w) => !wantWorkloads || wantWorkloads.includes(w.id));
const systemIds: SystemId[] = wantSystems ? SYSTEM_IDS.filter((s) => wantSystems.includes(s)) : [...DEFAULT_SYSTEMS];
const fullRun = !wantWorkloads && !wantSystems;
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const jsonPath = flag('json') ?? env.BENCH_JSON ?? (fullRun ? resolve(resultsDir, 'latest.json') : undefined);
const svgPath = flag('svg') ?? env.BENCH_SVG ?? (fullRun ? resolve(resultsDir, 'latest.svg') : undefined);
// --expose-gc: W6 reads a server's memory after GCs (child.ts); nothing runs a GC otherwise.
const serverArgs = ['--expose-gc', ...(env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE_DIR}`] : [])];

const progress = (line: string) => process.stderr.write(`${line}\n`);
const messageOf = (err: unknown) => (err as Error).message ?? String(err);
const CELL_CLIENT = fileURLToPath(new URL('./cell-client.js', import.meta.url));

/** Opening 1,000 connections of a slow peer takes a while; a cell that hangs longer than this (plus 6 ms a connection) fails. */
const CELL_SLACK_MS = 60_000;
const slack = (w: Workload) => CELL_SLACK_MS + w.connections * 6;
/** The warm-up and window of a cell, seconds. */
const windowOf = (w: Workload) => w.once ?? { warmup, seconds };

const mem = (u: ServerUsage): Mem => ({ rss: u.rss, heapUsed: u.heapUsed });

interface CellResult {
  m: Measured;
  memory?: CellReport['memory'];
}

/** A cell's client process (cell-client.ts), forked with its job sent. */
interface CellChild {
  send(m: CellJob | CellProbed | CellWindow | CellClose): void;
  kill(): void;
  /** Its close (exit, IPC channel closed too): what it sent before is read. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its exit; never settles if it never started. */
  exited: Promise<void>;
  readonly started: boolean;
}

/**
 * Fork a cell's client on `cpu` and send it `job`. Its probes are answered
 * with `probe` (called from a promise, so a probe that throws is answered
 * with its error, the window failing, rather than thrown here); its other
 * messages go to `on`, its 'error' to `onError`.
 */
function forkCell(job: CellJob, probe: (end: boolean) => Promise<ServerUsage[]>, cpu: number | undefined, on: (m: CellDone | CellReady | CellWindowDone) => void, onError: (err: Error) => void): CellChild {
  const { child, exited } = forkBench(CELL_CLIENT, [], [], cpu);
  // A send to a client that has just died fails; its exit says so.
  const send = (m: CellJob | CellProbed | CellWindow | CellClose) => {
    if (child.connected) child.send(m, () => undefined);
  };
  child.on('message', (m: CellProbe | CellDone | CellReady | CellWindowDone) => {
    if (m.type === 'probe') {
      Promise.resolve(m.end).then(probe).then(
        (usage) => send({ type: 'probed', id: m.id, usage }),
        (err: unknown) => send({ type: 'probed', id: m.id, error: messageOf(err) }),
      );
    } else on(m);
  });
  // 'close', not 'exit': it comes once the IPC channel is closed too, so the result, if sent, has been read.
  // An 'error' (it could not be started) counts as its close.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
    child.on('error', (err) => {
      onError(err);
      resolve({ code: null, signal: null });
    });
  });
  send(job);
  return { send, kill: () => child.kill('SIGKILL'), closed, exited, started: child.pid !== undefined };
}

/**
 * Run a cell's client (cell-client.ts) in a fresh process, on `cpu`,
 * answering its probes with `probe`; resolves with its result once it has
 * exited, so the next cell starts with it gone. Its error, or its exit
 * without a result, rejects. On `signal` (the cell timed out) it is killed.
 */
async function runClient(job: CellJob, probe: (end: boolean) => Promise<ServerUsage[]>, cpu: number | undefined, signal: AbortSignal): Promise<Measured> {
  // Timed out before it started (the W6 baseline was still being read): no client is started at all.
  if (signal.aborted) throw new Error(`${job.system} ${job.workload}: timed out before its client started`);
  let result: Measured | undefined;
  let failed: Error | undefined;
  const c = forkCell(
    job,
    probe,
    cpu,
    (m) => {
      if (m.type === 'result') result = m.m;
      else if (m.type === 'error') failed ??= new Error(m.message);
    },
    (err) => (failed ??= err),
  );
  signal.addEventListener('abort', c.kill);
  try {
    const { code, signal: sig } = await c.closed;
    if (failed) throw failed;
    if (!result) throw new Error(`${job.system} ${job.workload}: its client process exited (${sig ?? code}) without a result`);
    return result;
  } finally {
    signal.removeEventListener('abort', c.kill);
    c.kill(); // a no-op once it has exited
    // (A process that never started, e.g. spawn failed, may never report an exit.)
    if (c.started) await c.exited;
  }
}

/**
 * One cell: a client process opens the workload's connections to
 * `procs[0]` (the system's server; a relay's `procs` go on with the server
 * behind it), checks an echo, measures, closes. CPU is read in every
 * process of `procs`; memory (with `w.memory`) in the first, after GCs,
 * before the connections open and at the window's end.
 */
async function cell(system: System, w: Workload, procs: readonly ServerProcess[], cpu: number | undefined, signal: AbortSignal): Promise<CellResult> {
  const server = procs[0]!;
  const baseline = w.memory ? await server.usage(true) : undefined;
  const win = windowOf(w);
  const probe = (end: boolean) => Promise.all(procs.map((p, i) => p.usage(end && w.memory === true && i === 0)));
  const job: CellJob = {
    type: 'job',
    system: system.id,
    workload: w.id,
    server: { address: server.address, socketPath: server.socketPath },
    options: { inflight: w.inflight, warmupMs: win.warmup * 1000, measureMs: win.seconds * 1000, latency: w.latency, periodMs: w.periodMs },
  };
  const m = await runClient(job, probe, cpu, signal);
  return { m, ...(baseline && m.end ? { memory: { baseline: mem(baseline), end: mem(m.end[0]!) } } : {}) };
}

/**
 * `run`, failing after `ms`; then its signal is aborted (which kills the
 * cell's client), and the failure waits (at most 10 s) for `run` to end,
 * so the next cell does not start beside a client still going.
 */
function withTimeout<T>(run: (signal: AbortSignal) => Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = new AbortController();
    let timedOut = false;
    const running = run(abort.signal);
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
      const fail = () => reject(new Error(`${what}: no result within ${Math.round(ms / 1000)} s`));
      void Promise.race([running.then(fail, fail), sleep(10_000).then(fail)]);
    }, ms);
    running.then(
      (value) => {
        if (timedOut) return;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (timedOut) return;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * The paired measurement the targets are judged on: sessions, rounds per
 * session, each window (0 rounds: none, the cells' medians judge).
 */
function count(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number, at least ${min} (got ${value})`);
  return n;
}
const pairedSessions = count('paired-sessions', flag('paired-sessions') ?? env.BENCH_PAIRED_SESSIONS ?? '3', 1);
const pairedPerSession = count('paired-rounds', flag('paired-rounds') ?? env.BENCH_PAIRED_ROUNDS ?? '4', 0);
const pairedCount = pairedSessions * pairedPerSession;
const pairedMs = Number(flag('paired-ms') ?? env.BENCH_PAIRED_MS ?? 750);
if (!(pairedMs > 0)) throw new Error('--paired-ms must be a positive number of milliseconds');
/** Calls made, not counted, before each paired window: every loop is going when it opens. */
const RAMP_MS = 100;

/**
 * A paired group, in `pairedSessions` sessions. In each, one client
 * process per system of `ids` (ipcbor extended first), all connected at
 * once, each warmed up in turn; then `pairedPerSession` rounds in which
 * each client measures one window while the others wait with no call
 * going, the order rotating by one each round. A round's systems are
 * measured within seconds of each other, so a change in the machine's
 * speed (on a shared VM a cell's figure moves by a tenth from one cell to
 * the next) hits them alike: the ratio of two systems' windows in one
 * round keeps far less of it than the ratio of cells measured minutes
 * apart. Fresh processes each session: how a process's JIT settles also
 * moves its figure, and one process per system would carry that into
 * every round. A client that fails ends the group.
 */
async function pairedGroup(w: Workload, ids: readonly SystemId[], procsOf: (id: SystemId) => ServerProcess[], cpu: number | undefined): Promise<PairedGroup> {
  const series: Record<string, PairedSeries> = {};
  for (const id of ids) series[id] = { rates: [], p50s: [], p99s: [], cpu: { client: [], server: [] } };
  const group: PairedGroup = { workload: w.id, systems: [...ids], series };
  for (let session = 0; session < pairedSessions && group.error === undefined; session++) {
    // The warm-ups rotate too: the first one warmed waits longest for its first window.
    const order = ids.map((_, k) => ids[(session + k) % ids.length]!);
    await pairedSession(w, order, procsOf, cpu, series).catch((err: unknown) => (group.error = messageOf(err)));
  }
  return group;
}

let nextWindow = 1;

/** One session of a paired group (see pairedGroup); its windows go into `series`. */
async function pairedSession(w: Workload, ids: readonly SystemId[], procsOf: (id: SystemId) => ServerProcess[], cpu: number | undefined, series: Record<string, PairedSeries>): Promise<void> {
  const clients: { id: SystemId; child: CellChild; ready: Promise<void>; window: (n: number) => Promise<Measured> }[] = [];
  try {
    for (const id of ids) {
      const procs = procsOf(id);
      const pending = new Map<number, { resolve: (m: Measured) => void; reject: (err: Error) => void }>();
      let readied!: { resolve: () => void; reject: (err: Error) => void };
      const ready = new Promise<void>((resolve, reject) => (readied = { resolve, reject }));
      /** Why it can measure no more windows (it failed, or left). */
      let gone: Error | undefined;
      const fail = (err: Error) => {
        gone ??= err;
        readied.reject(err);
        for (const p of pending.values()) p.reject(err);
        pending.clear();
      };
      const job: CellJob = {
        type: 'job',
        system: id,
        workload: w.id,
        server: { address: procs[0]!.address, socketPath: procs[0]!.socketPath },
        options: { inflight: w.inflight, warmupMs: warmup * 1000, measureMs: 0, latency: w.latency },
        paired: true,
      };
      const child = forkCell(
        job,
        () => Promise.all(procs.map((p) => p.usage(false))),
        cpu,
        (m) => {
          if (m.type === 'ready') readied.resolve();
          else if (m.type === 'window-done') {
            const p = pending.get(m.id);
            pending.delete(m.id);
            if (m.m) p?.resolve(m.m);
            else p?.reject(new Error(m.error));
          } else if (m.type === 'error') fail(new Error(`${id}: ${m.message}`));
        },
        (err) => fail(err),
      );
      child.closed.then(() => fail(new Error(`${id}: its client process left`)));
      const window = (n: number) =>
        new Promise<Measured>((resolve, reject) => {
          if (gone) return reject(gone);
          pending.set(n, { resolve, reject });
          child.send({ type: 'window', id: n, rampMs: RAMP_MS, measureMs: pairedMs });
        });
      clients.push({ id, child, ready, window });
      // Warmed up one after the other: each has CPU 0 to itself meanwhile.
      await timed(ready, warmup * 1000 + slack(w), `${id} ${w.id} (paired): not ready`);
    }
    for (let round = 0; round < pairedPerSession; round++) {
      for (let k = 0; k < clients.length; k++) {
        const c = clients[(round + k) % clients.length]!;
        const m = await timed(c.window(nextWindow++), pairedMs + RAMP_MS + CELL_SLACK_MS, `${c.id} ${w.id} (paired): no window`);
        // One entry per round in every list (null where a window has no such figure), so round i is entry i.
        const x = series[c.id]!;
        x.rates.push(m.rate * w.perCall);
        if (w.latency) {
          x.p50s.push(m.p50 ?? null);
          x.p99s.push(m.p99 ?? null);
        }
        x.cpu.client.push(m.cpu.client);
        x.cpu.server.push(m.cpu.server ?? null);
      }
    }
  } finally {
    for (const c of clients) c.child.send({ type: 'close' });
    // Closing 1,000 connections takes a moment; a client that has not left after that is killed.
    await Promise.all(clients.map((c) => timed(c.child.closed, 15_000, 'close').catch(() => c.child.kill())));
    for (const c of clients) if (c.child.started) await c.child.exited;
  }
}

/** `p`, or a rejection after `ms`. */
function timed<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${Math.round(ms / 1000)} s`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const fmtValue = (v: number, unit: Workload['unit']) => (unit === 'MiB/s' ? `${v.toFixed(1)} MiB/s` : `${Math.round(v).toLocaleString('en-US')}/s`);

/** The checkout measured, e.g. "v0.1.0-12-gabc1234-dirty" (undefined outside git). */
function commit(): string | undefined {
  const r = spawnSync('git', ['describe', '--always', '--dirty', '--tags'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The progress line's figures for one measured cell. */
function described(m: Measured, w: Workload): string {
  const lat = m.p99 !== undefined ? `  p50 ${m.p50!.toFixed(1)} us, p99 ${m.p99.toFixed(1)} us` : '';
  const cpu = `  cpu ${m.cpu.client.toFixed(1)}${m.cpu.server === undefined ? '' : ` + ${m.cpu.server.toFixed(1)}`} us/call`;
  return `${fmtValue(m.rate * w.perCall, w.unit)}${lat}${cpu}`;
}

/** The idle-memory section: bench/idle.js, if someone has written it. Its stdout is shown; a JSON last line is kept. */
function runIdle(): Report['idle'] {
  const script = fileURLToPath(new URL('./idle.js', import.meta.url));
  if (env.BENCH_IDLE === '0' || !existsSync(script)) return undefined;
  progress('idle memory: running bench/idle.js');
  const r = spawnSync(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', timeout: 300_000 });
  const text = (r.stdout ?? '').trimEnd();
  const last = text.split('\n').at(-1) ?? '';
  let data: unknown;
  try {
    data = last.startsWith('{') ? JSON.parse(last) : undefined;
  } catch {
    data = undefined;
  }
  return { status: r.status, text, data };
}

async function main(): Promise<void> {
  cleanupOnExit();
  const started = Date.now();
  const pinned = env.BENCH_PIN !== '0' && cpus().length >= 2 && pinSelf(0);
  const clientCpu = pinned ? 0 : undefined;
  const serverCpu = pinned ? 1 : undefined;
  const relayCpu = pinned && env.BENCH_RELAY_CPU ? Number(env.BENCH_RELAY_CPU) : serverCpu;
  const withRelay = systemIds.some((id) => SYSTEMS[id].server.fronts !== undefined);
  const where = pinned ? `client on CPU 0, servers on CPU 1${withRelay ? `, relays on CPU ${relayCpu}` : ''}` : 'not pinned';
  const meta: Report['meta'] = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    pinned,
    seconds,
    warmup,
    repeats,
    loadBefore: loadavg()[0]!,
    ...(pinned && withRelay ? { relayCpu: relayCpu! } : {}),
    ...(commit() ? { commit: commit()! } : {}),
  };
  if (meta.loadBefore! > meta.cores / 2) progress(`note: the machine is busy (1-minute load average ${meta.loadBefore!.toFixed(1)} on ${meta.cores} cores): expect noisy figures, ratios included`);
  progress(`ipcbor bench: node ${meta.node}, ${meta.cpu} (${meta.cores} cores, ${where}), ${seconds} s x ${repeats} per cell after ${warmup} s warm-up`);

  // Which systems can run here; the others are reported, not fatal.
  const systems: (SystemReport & { id: SystemId })[] = await Promise.all(systemIds.map(async (id) => {
    const s = SYSTEMS[id];
    const why = await s.unavailable();
    return {
      id,
      label: s.label,
      kind: s.kind,
      pkg: s.pkg,
      ...(s.version ? { version: s.version } : {}),
      ...(s.note ? { note: s.note } : {}),
      ...(s.via ? { via: s.via } : {}),
      ...(s.only ? { only: { workloads: [...s.only.workloads], why: s.only.why } } : {}),
      ...(s.targets ? { targets: { ...s.targets } } : {}),
      ...(why ? { unavailable: why } : {}),
    };
  }));

  // One server process per server key, started together (a relay once the server behind it is ready).
  const servers = new Map<string, ServerProcess>();
  const processes = await startServers(
    systems.filter((s) => !s.unavailable).map((s) => SYSTEMS[s.id].server),
    serverArgs,
    (spec) => (spec.fronts === undefined ? serverCpu : relayCpu),
  );
  for (const s of systems) {
    const p = processes.started.get(SYSTEMS[s.id].server.key);
    if (p === undefined) continue;
    try {
      servers.set(SYSTEMS[s.id].server.key, await p);
    } catch (err) {
      s.unavailable = `its server did not start: ${(err as Error).message}`;
    }
  }
  for (const s of systems) if (s.unavailable) progress(`  ${s.id}: unavailable: ${s.unavailable}`);
  const running = systems.filter((s) => !s.unavailable);

  const cells = new Map<string, CellReport>();
  const key = (w: string, s: string) => `${w}/${s}`;
  for (const w of workloads) for (const s of systems) cells.set(key(w.id, s.id), { samples: [], p50s: [], p99s: [], cpu: { client: [], server: [] }, errors: [] });
  const runs = (s: SystemReport, w: Workload) => s.only === undefined || s.only.workloads.includes(w.id);
  for (const s of running) {
    const skipped = workloads.filter((w) => !runs(s, w)).map((w) => w.id);
    if (skipped.length > 0) progress(`  ${s.id}: not run on ${skipped.join(', ')}: ${s.only!.why}`);
  }
  /** A system's server processes: its own and, for a relay, the one behind it. */
  const serving = (spec: ServerSpec | undefined): ServerProcess[] => (spec ? [servers.get(spec.key)!, ...serving(spec.fronts)] : []);

  /**
   * The paired rounds: on each workload a target names, ipcbor extended
   * and the systems it is judged against (those whose cells ran without a
   * failure), in one group each (pairedGroup).
   */
  const pairedRounds = async (done: Map<string, CellReport>, systemsRunning: readonly (SystemReport & { id: SystemId })[]): Promise<Report['paired']> => {
    if (pairedCount === 0) return undefined;
    const groups: PairedGroup[] = [];
    for (const w of workloads.filter((x) => !x.once && !x.periodMs)) {
      const ok = (id: string) => {
        const s = systemsRunning.find((x) => x.id === id);
        const c = done.get(key(w.id, id));
        return s !== undefined && runs(s, w) && c !== undefined && c.errors.length === 0 && !c.unavailable && c.samples.length > 0;
      };
      const refs = referencesOn(w.id).filter(ok);
      if (!ok(SUBJECT) || refs.length === 0) continue;
      const ids = [SUBJECT, ...refs] as SystemId[];
      progress(`  paired ${w.id}: ${ids.join(', ')}, ${pairedSessions} x ${pairedPerSession} rounds of ${pairedMs} ms`);
      const g = await pairedGroup(w, ids, (id) => serving(SYSTEMS[id].server), clientCpu);
      if (g.error) progress(`  paired ${w.id} FAILED: ${g.error}`);
      else progress(`  paired ${w.id}: ${ids.map((id) => `${id} ${fmtValue(median(g.series[id]!.rates)!, w.unit)}`).join(', ')}`);
      groups.push(g);
    }
    return { sessions: pairedSessions, rounds: pairedCount, windowMs: pairedMs, rampMs: RAMP_MS, warmup, groups };
  };

  // Repeats are interleaved (every cell once, then again) so that drift in
  // the machine's speed spreads over all cells rather than hitting one. The
  // workloads measured once (W6) come after, so their 10,000 connections
  // leave nothing behind in the servers during the others.
  // The paired rounds the targets are judged on come between the two.
  const plan: { w: Workload; s: SystemReport & { id: SystemId } }[] = [];
  for (let r = 1; r <= repeats; r++) for (const w of workloads.filter((x) => !x.once)) for (const s of running) if (runs(s, w)) plan.push({ w, s });
  const pairedAt = plan.length;
  for (const w of workloads.filter((x) => x.once)) for (const s of running) if (runs(s, w)) plan.push({ w, s });
  let paired: Report['paired'];
  for (const [i, { w, s }] of plan.entries()) {
    if (i === pairedAt) paired = await pairedRounds(cells, running);
    const c = cells.get(key(w.id, s.id))!;
    const tag = `[${String(i + 1).padStart(String(plan.length).length)}/${plan.length}] ${w.id} ${s.id.padEnd(8)}`;
    if (c.errors.length > 0 || c.unavailable) {
      progress(`  ${tag} skipped (${c.unavailable ? 'unavailable' : 'failed before'})`);
      continue;
    }
    const cannot = SYSTEMS[s.id].cannot?.(w);
    if (cannot !== undefined) {
      c.unavailable = cannot;
      progress(`  ${tag} unavailable: ${cannot}`);
      continue;
    }
    try {
      const win = windowOf(w);
      const { m, memory } = await withTimeout(
        (signal) => cell(SYSTEMS[s.id], w, serving(SYSTEMS[s.id].server), clientCpu, signal),
        (win.warmup + win.seconds) * 1000 + slack(w),
        `${s.id} ${w.id}`,
      );
      c.samples.push(m.rate * w.perCall);
      if (m.p50 !== undefined) c.p50s.push(m.p50);
      if (m.p99 !== undefined) c.p99s.push(m.p99);
      c.cpu.client.push(m.cpu.client);
      if (m.cpu.server !== undefined) c.cpu.server.push(m.cpu.server);
      if (memory) c.memory = memory;
      progress(`  ${tag} ${described(m, w)}`);
    } catch (err) {
      const msg = messageOf(err);
      c.errors.push(msg);
      progress(`  ${tag} FAILED: ${msg}`);
    }
  }
  if (plan.length === pairedAt) paired = await pairedRounds(cells, running);
  await processes.stop();

  const idle = runIdle();
  const report: Report = {
    meta: { ...meta, loadAfter: loadavg()[0]!, elapsedSeconds: Math.round((Date.now() - started) / 1000) },
    workloads: workloads.map((w) => ({
      id: w.id,
      title: w.title,
      unit: w.unit,
      connections: w.connections,
      inflight: w.inflight,
      ...(w.periodMs ? { periodMs: w.periodMs, offered: offered(w)! } : {}),
      ...(w.once ? { once: { ...w.once } } : {}),
    })),
    systems,
    cells: Object.fromEntries(cells),
    ...(paired ? { paired } : {}),
    targets: [],
    ...(idle ? { idle } : {}),
  };
  report.targets = judge(report);
  for (const [k, c] of cells) {
    const [w, id] = k.split('/') as [string, string];
    const cpu = cpuPerCall(report, w, id);
    c.summary = { figure: median(c.samples), p50: median(c.p50s), p99: median(c.p99s), ...(cpu ? { cpu } : {}) };
  }
  console.log(renderTables(report));
  if (jsonPath) {
    mkdirSync(dirname(jsonPath), { recursive: true });
    writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    progress(`wrote ${jsonPath}`);
  }
  if (svgPath) {
    mkdirSync(dirname(svgPath), { recursive: true });
    writeFileSync(svgPath, renderSvg(report));
    progress(`wrote ${svgPath}`);
  }
  progress(`done in ${report.meta.elapsedSeconds} s`);
  // A failure of ipcbor or of a baseline fails the run; a peer's is only reported. (A target not met does not fail it: the report says so.)
  // A baseline whose package comes from bench/peers (rawcborx) may be unavailable as a peer may.
  const broken = systems.filter(
    (s) => s.kind !== 'peer' && ((s.unavailable && !SYSTEMS[s.id].fromPeers) || workloads.some((w) => cells.get(key(w.id, s.id))!.errors.length > 0)),
  );
  if (broken.length > 0) {
    console.error(`bench: ${broken.map((s) => s.id).join(', ')} failed`);
    process.exitCode = 1;
  }
}

main().then(
  () => {
    cleanup();
    // A peer's library may keep handles (zeromq's context): leave once the report is out.
    process.exit();
  },
  (err: unknown) => {
    console.error('bench failed:', err);
    cleanup();
    process.exit(1);
  },
);
