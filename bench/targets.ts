/**
 * ipcbor's targets in the bench, each a ratio taken in the same run:
 * ipcbor extended's figure over a reference system's, on a workload,
 * against a bound. `judge` turns a run into met / not met (or why it
 * could not be judged); run.ts stores the verdicts in the report, and
 * report.ts prints them. The relay and bridge targets (over ipcbor extended)
 * stay with their systems (systems.ts).
 *
 * A ratio is taken from the paired rounds when the run has them (run.ts:
 * ipcbor extended and its references measured in alternating windows):
 * the median over rounds of each round's ratio. Otherwise, or when the
 * paired group failed, it is the ratio of the cells' medians.
 */
import { figure, median, type PairedGroup, type Report } from './report.js';

type Metric = 'rate' | 'cpu' | 'p99';

interface TargetDef {
  /** What is compared, for the reader. */
  what: string;
  metric: Metric;
  against: string;
  op: '>=' | '<=';
  bound: number;
  workloads: readonly string[];
}

export const SUBJECT = 'extended';

export const TARGETS: readonly TargetDef[] = [
  { what: 'ipcbor extended calls/s over node-ipc', metric: 'rate', against: 'nodeipc', op: '>=', bound: 1.0, workloads: ['W1', 'W2', 'W4', 'W5'] },
  { what: 'ipcbor extended over the raw loop with ipcbor\'s codec (rawcodec)', metric: 'rate', against: 'rawcodec', op: '>=', bound: 0.95, workloads: ['W1', 'W2', 'W3', 'W4', 'W5'] },
  { what: 'ipcbor extended CPU per call (client + server) over the raw loop with cbor-x (rawcborx)', metric: 'cpu', against: 'rawcborx', op: '<=', bound: 1.15, workloads: ['W5'] },
  { what: 'ipcbor extended p99 latency over the raw loop\'s (raw)', metric: 'p99', against: 'raw', op: '<=', bound: 1.1, workloads: ['W1'] },
];

/** The systems ipcbor extended is judged against on workload `w`, each once. */
export function referencesOn(w: string): string[] {
  return [...new Set(TARGETS.filter((t) => t.workloads.includes(w)).map((t) => t.against))];
}

export interface TargetResult {
  what: string;
  workload: string;
  system: string;
  against: string;
  op: '>=' | '<=';
  bound: number;
  /** The ratio, when both figures were measured. */
  ratio?: number;
  met?: boolean;
  /** Why there is no ratio. */
  unjudged?: string;
  /** Where the ratio comes from: the paired rounds (median of per-round ratios, over `rounds` rounds) or the cells' medians. */
  basis?: 'paired' | 'cells';
  rounds?: number;
}

/** CPU per call, client + server, microseconds: the median over repeats of each repeat's total. */
export function cpuPerCall(r: Report, w: string, s: string): { total: number; client: number; server: number } | undefined {
  const c = r.cells[`${w}/${s}`]?.cpu;
  if (!c || c.server.length === 0) return undefined;
  const totals = c.server.map((x, i) => x + c.client[i]!);
  return { total: median(totals)!, client: median(c.client)!, server: median(c.server)! };
}

function value(r: Report, m: Metric, w: string, s: string): number | undefined {
  if (m === 'rate') return figure(r, w, s);
  if (m === 'cpu') return cpuPerCall(r, w, s)?.total;
  return median(r.cells[`${w}/${s}`]?.p99s ?? []);
}

const finite = (v: number | null | undefined): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Round i's figure of system `s` in a paired group (undefined where that window has none). */
function roundValue(g: PairedGroup, m: Metric, s: string, i: number): number | undefined {
  const x = g.series[s];
  if (!x) return undefined;
  if (m === 'rate') return finite(x.rates[i]);
  if (m === 'p99') return finite(x.p99s[i]);
  const client = finite(x.cpu.client[i]);
  const server = finite(x.cpu.server[i]);
  return client === undefined || server === undefined ? undefined : client + server;
}

/**
 * The median over the rounds of a paired group on `w` of a's figure over
 * b's in the same round, with the number of rounds; undefined when the
 * run has no such group, it failed, or it has no round with both figures.
 */
export function pairedRatio(r: Report, m: Metric, w: string, a: string, b: string): { ratio: number; rounds: number } | undefined {
  const g = r.paired?.groups.find((x) => x.workload === w && x.systems.includes(a) && x.systems.includes(b));
  if (!g || g.error !== undefined) return undefined;
  const ratios: number[] = [];
  const n = Math.min(g.series[a]?.rates.length ?? 0, g.series[b]?.rates.length ?? 0);
  for (let i = 0; i < n; i++) {
    const x = roundValue(g, m, a, i);
    const y = roundValue(g, m, b, i);
    if (x !== undefined && y !== undefined && y > 0) ratios.push(x / y);
  }
  const ratio = median(ratios);
  return ratio === undefined ? undefined : { ratio, rounds: ratios.length };
}

/** Every target on every workload of the run that it names. */
export function judge(r: Report): TargetResult[] {
  const ran = new Set(r.workloads.map((w) => w.id));
  const present = (s: string) => r.systems.some((x) => x.id === s && !x.unavailable);
  return TARGETS.flatMap((t) =>
    t.workloads
      .filter((w) => ran.has(w))
      .map((w): TargetResult => {
        const base = { what: t.what, workload: w, system: SUBJECT, against: t.against, op: t.op, bound: t.bound };
        const missing = [SUBJECT, t.against].filter((s) => !present(s));
        if (missing.length > 0) return { ...base, unjudged: `${missing.join(' and ')} not in this run` };
        const paired = pairedRatio(r, t.metric, w, SUBJECT, t.against);
        if (paired) {
          const { ratio, rounds } = paired;
          return { ...base, ratio, met: t.op === '>=' ? ratio >= t.bound : ratio <= t.bound, basis: 'paired', rounds };
        }
        const a = value(r, t.metric, w, SUBJECT);
        const b = value(r, t.metric, w, t.against);
        if (a === undefined || !b) return { ...base, unjudged: 'not measured (failed or not run)' };
        const ratio = a / b;
        return { ...base, ratio, met: t.op === '>=' ? ratio >= t.bound : ratio <= t.bound, basis: 'cells' };
      }),
  );
}
