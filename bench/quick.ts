/**
 * `npm run bench:quick`: the no-regression check of issue 10 (item 8), in a
 * few seconds. W2 only (64 calls in flight on one connection), the raw
 * `net` loop against ipcbor extended, in short interleaved rounds
 * (raw, ipcbor, ipcbor, raw, ...); each round pair gives a ratio, and the
 * median of those ratios is compared with the threshold. A ratio measured
 * in the same seconds, not an absolute figure, so a machine that is slow or
 * busy as a whole does not fail it.
 *
 *   node dist/bench/quick.js
 *
 * Environment:
 *   IPCBOR_BENCH_MIN_RATIO  lowest acceptable ipcbor/raw ratio (default 0.45)
 *   BENCH_QUICK_ROUNDS      round pairs (default 6)
 *   BENCH_QUICK_MS          milliseconds per system and round (default 300)
 *   BENCH_PIN               0: do not pin (as in run.ts)
 *
 * Exit status: 0 when the ratio is at or above the threshold, 1 below, 2 if
 * the check could not run.
 */
import { cpus, loadavg } from 'node:os';
import { cleanup, cleanupOnExit, pinSelf, startServer, type ServerProcess } from './processes.js';
import { median } from './report.js';
import { SYSTEMS } from './systems.js';
import { WORKLOADS, measure, type Caller } from './workloads.js';

const env = process.env;
const minRatio = Number(env.IPCBOR_BENCH_MIN_RATIO ?? 0.45);
const rounds = Math.max(1, Math.floor(Number(env.BENCH_QUICK_ROUNDS ?? 6)));
const ms = Number(env.BENCH_QUICK_MS ?? 300);
const W2 = WORKLOADS.find((w) => w.id === 'W2')!;

async function main(): Promise<number> {
  cleanupOnExit();
  const pinned = env.BENCH_PIN !== '0' && cpus().length >= 2 && pinSelf(0);
  const raw = SYSTEMS.raw;
  const ext = SYSTEMS.extended;
  const servers: ServerProcess[] = await Promise.all(
    [raw, ext].map((s) => startServer(s.server.script, s.server.key, [], pinned ? 1 : undefined, s.server.args)),
  );
  const callers: Caller[] = [await raw.open(servers[0]!, W2), await ext.open(servers[1]!, W2)];
  try {
    if (!raw.check(await callers[0]!.call(), W2) || !ext.check(await callers[1]!.call(), W2)) throw new Error('an echo did not come back unchanged');
    // Warm both up (JIT, socket buffers) before anything counts.
    for (const c of callers) await measure([c], W2.inflight, 0, 400);
    const ratios: number[] = [];
    const rates: [number[], number[]] = [[], []];
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a trend in the machine's speed does not favour one.
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      const got: number[] = [];
      for (const i of order) got[i] = (await measure([callers[i]!], W2.inflight, 50, ms)).rate;
      rates[0].push(got[0]!);
      rates[1].push(got[1]!);
      ratios.push(got[1]! / got[0]!);
    }
    const ratio = median(ratios)!;
    const ok = ratio >= minRatio;
    const n = (x: number) => Math.round(x).toLocaleString('en-US');
    console.log(
      `bench:quick W2 (64 in flight, 1 conn${pinned ? ', pinned' : ''}, load ${loadavg()[0]!.toFixed(1)}): raw ${n(median(rates[0])!)}/s, ipcbor extended ${n(median(rates[1])!)}/s, ` +
        `ratio ${ratio.toFixed(3)} (rounds ${ratios.map((x) => x.toFixed(2)).join(' ')}; minimum ${minRatio}): ${ok ? 'ok' : 'BELOW THE MINIMUM'}`,
    );
    return ok ? 0 : 1;
  } finally {
    await Promise.all(callers.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.stop()));
  }
}

main().then(
  (code) => {
    cleanup();
    process.exit(code);
  },
  (err: unknown) => {
    console.error('bench:quick could not run:', err);
    cleanup();
    process.exit(2);
  },
);
