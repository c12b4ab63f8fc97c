/**
 * ipcbor's targets in the bench, each a ratio taken in the same run:
 * ipcbor extended's figure over a reference system's, on a workload,
 * against a bound. `judge` turns a run's cells into met / not met (or why
 * it could not be judged); run.ts stores the verdicts in the report, and
 * report.ts prints them. The relay and bridge targets (over ipcbor extended)
 * stay with their systems (systems.ts).
 */
import { figure, median, type Report } from './report.js';

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

const SUBJECT = 'extended';

export const TARGETS: readonly TargetDef[] = [
  { what: 'ipcbor extended calls/s over node-ipc', metric: 'rate', against: 'nodeipc', op: '>=', bound: 1.0, workloads: ['W1', 'W2', 'W4', 'W5'] },
  { what: 'ipcbor extended over the raw loop with ipcbor\'s codec (rawcodec)', metric: 'rate', against: 'rawcodec', op: '>=', bound: 0.95, workloads: ['W1', 'W2', 'W3', 'W4', 'W5'] },
  { what: 'ipcbor extended CPU per call (client + server) over the raw loop with cbor-x (rawcborx)', metric: 'cpu', against: 'rawcborx', op: '<=', bound: 1.15, workloads: ['W5'] },
  { what: 'ipcbor extended p99 latency over the raw loop\'s (raw)', metric: 'p99', against: 'raw', op: '<=', bound: 1.1, workloads: ['W1'] },
];

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
        const a = value(r, t.metric, w, SUBJECT);
        const b = value(r, t.metric, w, t.against);
        if (a === undefined || !b) return { ...base, unjudged: 'not measured (failed or not run)' };
        const ratio = a / b;
        return { ...base, ratio, met: t.op === '>=' ? ratio >= t.bound : ratio <= t.bound };
      }),
  );
}
