/**
 * The workloads and the one driver that runs them all. Every system (the
 * raw baselines, ipcbor extended and base, the peers) is reduced to a
 * `Caller`, so the loops that are timed are the same code for all of them.
 */
import type { ServerUsage } from './child.js';

/** One connection, reduced to "make the bench call". */
export interface Caller {
  /** One echo of the workload's params; resolves with the answer (decoded, where the system decodes). */
  call(): Promise<unknown>;
  close(): Promise<void>;
}

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4' | 'W5' | 'W6';

export interface Workload {
  readonly id: WorkloadId;
  readonly title: string;
  /** Connections opened for the cell. */
  readonly connections: number;
  /** Calls each connection keeps outstanding at all times (each slot is a sequential loop). */
  readonly inflight: number;
  /** What is echoed: a small object, or (W3) a byte string. */
  readonly params: unknown;
  readonly unit: 'calls/s' | 'MiB/s';
  /** Units of `unit` per completed call, over calls/s (1 MiB payload per call for W3). */
  readonly perCall: number;
  /** Record each call's latency (p50/p99 reported). */
  readonly latency: boolean;
  /**
   * Paced (W6): each connection starts a call every `periodMs` (start to
   * start; after a longer call the next starts at once), rather than the
   * next as soon as one ends. Offered load: connections x 1000 / periodMs calls/s.
   */
  readonly periodMs?: number;
  /** Measured once per system (not every repeat), with its own warm-up and window, in seconds. */
  readonly once?: { readonly warmup: number; readonly seconds: number };
  /** Connections opened at a time (default 50); W6 opens its 10,000 in batches well under the listen backlog. */
  readonly openBatch?: number;
  /** Report the server's memory (sampled after GCs at the window's end, against its idle baseline before the connections opened). */
  readonly memory?: boolean;
}

export const MiB = 1024 * 1024;
export const SMALL = { message: 'hello', n: 1 };

/** A 1 MiB payload that is not all zeros (nothing on the path may shortcut it). */
function bigPayload(): Uint8Array {
  const bytes = new Uint8Array(MiB);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

export const WORKLOADS: readonly Workload[] = [
  { id: 'W1', title: 'sequential small echo', connections: 1, inflight: 1, params: SMALL, unit: 'calls/s', perCall: 1, latency: true },
  { id: 'W2', title: '64 in flight, 1 conn', connections: 1, inflight: 64, params: SMALL, unit: 'calls/s', perCall: 1, latency: false },
  { id: 'W3', title: '1 MiB echo, sequential', connections: 1, inflight: 1, params: bigPayload(), unit: 'MiB/s', perCall: 1, latency: false },
  { id: 'W4', title: '100 clients, sequential', connections: 100, inflight: 1, params: SMALL, unit: 'calls/s', perCall: 1, latency: true },
  { id: 'W5', title: '1,000 clients, sequential', connections: 1000, inflight: 1, params: SMALL, unit: 'calls/s', perCall: 1, latency: true },
  // 10,000 mostly idle connections: 100,000 calls/s offered. Opening and
  // closing them dominates the cell, so it is measured once per system, in
  // batches of 500 (under Node's default listen backlog of 511, well under somaxconn 4096).
  {
    id: 'W6',
    title: '10,000 clients, 1 call/100 ms each',
    connections: 10_000,
    inflight: 1,
    params: SMALL,
    unit: 'calls/s',
    perCall: 1,
    latency: true,
    periodMs: 100,
    once: { warmup: 1, seconds: 3 },
    openBatch: 500,
    memory: true,
  },
];

/** Calls per second a paced workload offers (all its connections together). */
export const offered = (w: Workload): number | undefined => (w.periodMs ? (w.connections * 1000) / w.periodMs : undefined);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface MeasureOptions {
  /** Calls each caller keeps going at once (each a sequential loop). */
  inflight: number;
  warmupMs: number;
  measureMs: number;
  /** Time every call started in the window. */
  latency?: boolean;
  /** Pace each loop (see Workload.periodMs); the loops' first calls are spread evenly over the first period, so they are not synchronized. */
  periodMs?: number;
  /**
   * The server processes' own usage, asked at the window's start and at its
   * end (`end`): the loops keep going until the answers are in, so each
   * server's own reading spans a window under the same load.
   */
  probe?: (end: boolean) => Promise<ServerUsage[]>;
}

export interface Measured {
  /** Completed calls per second in the measured window. */
  rate: number;
  /** With `latency`: per-call latency percentiles over the window, in microseconds. */
  p50?: number;
  p99?: number;
  /** CPU time per completed call, user + system, microseconds: this (the client's) process, and the servers' (with `probe`, summed). */
  cpu: { client: number; server?: number };
  /** With `probe`: the servers' usage at the window's end. */
  end?: ServerUsage[];
}

/** Growable store of latencies (ms, from performance.now()). */
class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  percentiles(...ps: number[]): number[] {
    const sorted = this.data.slice(0, this.length).sort();
    return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN);
  }
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * The servers' CPU per call: each one's CPU rate over its own reading of
 * the window (its clock, between the two probes), times the client's
 * window, over the calls completed in it.
 */
function serverCpuPerCall(start: readonly ServerUsage[], end: readonly ServerUsage[], windowMs: number, calls: number): number {
  let perMs = 0;
  end.forEach((e, i) => {
    const s = start[i]!;
    perMs += (e.cpuUs - s.cpuUs) / Math.max(1e-3, e.at - s.at);
  });
  return (perMs * windowMs) / Math.max(1, calls);
}

/**
 * Keep `inflight` loops going on every caller; count the calls completed in
 * the measured window only (after the warm-up, so the JIT and socket
 * buffers are settled). With `latency`, every call started in the window is
 * timed (performance.now() around it: about 0.1 µs per call, for every
 * system alike). This process's CPU time is read at the window's edges.
 */
export async function measure(callers: readonly Caller[], o: MeasureOptions): Promise<Measured> {
  let stop = false;
  let counting = false;
  let count = 0;
  const samples = new Samples();
  const period = o.periodMs ?? 0;
  const latency = o.latency ?? false;
  const t = performance.now();
  const loop = async (c: Caller, first: number) => {
    let next = first;
    try {
      while (!stop) {
        if (period > 0) {
          const wait = next - performance.now();
          if (wait > 0) await sleep(wait);
          if (stop) return;
        }
        if ((latency && counting) || period > 0) {
          const timed = latency && counting;
          const started = performance.now();
          next = started + period;
          await c.call();
          if (counting) {
            if (timed) samples.push(performance.now() - started);
            count++;
          }
        } else {
          await c.call();
          if (counting) count++;
        }
      }
    } catch (err) {
      stop = true; // one failure ends the cell for every loop
      throw err;
    }
  };
  const loops: Promise<void>[] = [];
  const n = callers.length * o.inflight;
  for (const c of callers) for (let i = 0; i < o.inflight; i++) loops.push(loop(c, t + (loops.length * period) / n));
  const all = Promise.all(loops);
  all.catch(() => undefined); // observed below; a failure during the sleeps must not be "unhandled"

  // Racing the sleeps with the loops makes a failed call end the cell at once.
  await Promise.race([sleep(o.warmupMs), all]);
  count = 0;
  counting = true;
  const cpu0 = cpuNow();
  const t0 = performance.now();
  const start = o.probe?.(false);
  start?.catch(() => undefined); // awaited below, after the window
  await Promise.race([sleep(o.measureMs), all]);
  const done = count;
  const t1 = performance.now();
  const cpu1 = cpuNow();
  counting = false;
  // The loops go on until the servers have read their usage too (a failed call ends the wait).
  const servers = o.probe && start ? await Promise.race([Promise.all([start, o.probe(true)]), all.then(() => undefined)]) : undefined;
  stop = true;
  await all;
  const out: Measured = { rate: done / ((t1 - t0) / 1000), cpu: { client: (cpu1 - cpu0) / Math.max(1, done) } };
  if (servers) {
    out.cpu.server = serverCpuPerCall(servers[0], servers[1], t1 - t0, done);
    out.end = servers[1];
  }
  if (latency && samples.length > 0) {
    const [p50, p99] = samples.percentiles(0.5, 0.99);
    out.p50 = p50! * 1000;
    out.p99 = p99! * 1000;
  }
  return out;
}

const busy = (err: unknown): boolean => {
  for (let e = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code === 'EAGAIN' || (typeof message === 'string' && message.includes('EAGAIN'))) return true;
  }
  return false;
};

/**
 * Open `n` connections with `open`, `batch` at a time (a unix listen
 * backlog holds a few hundred at most), retrying a connect refused with
 * EAGAIN (backlog full) with backoff. Each connection makes one call before
 * it counts as open, so lazy connects do not land in the timed window. If
 * one fails, those already open are closed.
 */
export async function openMany(n: number, open: () => Promise<Caller>, batch = 50): Promise<Caller[]> {
  const callers: Caller[] = [];
  const one = async (): Promise<Caller> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const c = await open();
        try {
          await c.call();
        } catch (err) {
          await c.close().catch(() => undefined);
          throw err;
        }
        return c;
      } catch (err) {
        if (!busy(err) || attempt >= 20) throw err;
        await sleep(Math.min(200, 5 * 2 ** attempt));
      }
    }
  };
  try {
    for (let i = 0; i < n; i += batch) {
      const got = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, one));
      for (const g of got) if (g.status === 'fulfilled') callers.push(g.value);
      const failed = got.find((g): g is PromiseRejectedResult => g.status === 'rejected');
      if (failed) throw failed.reason;
    }
    return callers;
  } catch (err) {
    await Promise.all(callers.map((c) => c.close().catch(() => undefined)));
    throw err;
  }
}
