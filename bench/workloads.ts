/**
 * The workloads and the one driver that runs them all. Every system (the
 * raw baselines, ipcbor extended and base, the peers) is reduced to a
 * `Caller`, so the loops that are timed are the same code for all of them.
 */

/** One connection, reduced to "make the bench call". */
export interface Caller {
  /** One echo of the workload's params; resolves with the answer (decoded, where the system decodes). */
  call(): Promise<unknown>;
  close(): Promise<void>;
}

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4' | 'W5';

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
  /** Lowest acceptable ipcbor/raw ratio (issue 10, item 6). */
  readonly target: number;
  /** Record each call's latency (p50/p99 reported). */
  readonly latency: boolean;
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
  { id: 'W1', title: 'sequential small echo', connections: 1, inflight: 1, params: SMALL, unit: 'calls/s', perCall: 1, target: 0.9, latency: true },
  { id: 'W2', title: '64 in flight, 1 conn', connections: 1, inflight: 64, params: SMALL, unit: 'calls/s', perCall: 1, target: 0.6, latency: false },
  { id: 'W3', title: '1 MiB echo, sequential', connections: 1, inflight: 1, params: bigPayload(), unit: 'MiB/s', perCall: 1, target: 0.9, latency: false },
  { id: 'W4', title: '100 clients, sequential', connections: 100, inflight: 1, params: SMALL, unit: 'calls/s', perCall: 1, target: 0.8, latency: false },
  { id: 'W5', title: '1,000 clients, sequential', connections: 1000, inflight: 1, params: SMALL, unit: 'calls/s', perCall: 1, target: 0.8, latency: false },
];

/** W1's p99 latency target: ipcbor's within this factor of the raw loop's. */
export const P99_TARGET = 1.2;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Measured {
  /** Completed calls per second in the measured window. */
  rate: number;
  /** With `latency`: per-call latency percentiles over the window, in microseconds. */
  p50?: number;
  p99?: number;
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

/**
 * Keep `inflight` sequential loops going on every caller; count the calls
 * completed in the measured window only (after the warm-up, so the JIT and
 * socket buffers are settled). With `latency`, every call started in the
 * window is timed (performance.now() around it: about 0.1 µs per call, for
 * every system alike).
 */
export async function measure(callers: readonly Caller[], inflight: number, warmupMs: number, measureMs: number, latency = false): Promise<Measured> {
  let stop = false;
  let counting = false;
  let count = 0;
  const samples = new Samples();
  const loop = async (c: Caller) => {
    try {
      while (!stop) {
        if (latency && counting) {
          const t = performance.now();
          await c.call();
          if (counting) {
            samples.push(performance.now() - t);
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
  for (const c of callers) for (let i = 0; i < inflight; i++) loops.push(loop(c));
  const all = Promise.all(loops);
  all.catch(() => undefined); // observed below; a failure during the sleeps must not be "unhandled"

  // Racing the sleeps with the loops makes a failed call end the cell at once.
  await Promise.race([sleep(warmupMs), all]);
  count = 0;
  counting = true;
  const t0 = performance.now();
  await Promise.race([sleep(measureMs), all]);
  const done = count;
  const t1 = performance.now();
  counting = false;
  stop = true;
  await all;
  const out: Measured = { rate: done / ((t1 - t0) / 1000) };
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
