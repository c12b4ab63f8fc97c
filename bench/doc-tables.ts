/**
 * The tables of docs/PERFORMANCE.md's "Results", written from a bench
 * report (bench/results/latest.json by default), in the doc's own format:
 * throughput, latency, CPU per call, and the targets as the run judged
 * them. After a full `npm run bench`, paste them over the doc's; the
 * prose around them is written by hand from the same report. The doc's
 * test (test/unit/performance-doc.test.ts) checks each table against
 * this output.
 *
 *   node dist/bench/doc-tables.js [REPORT.json]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { figure, fmt, median, statusOf, us, type Report, type SystemReport } from './report.js';
import { cpuPerCall } from './targets.js';

/** The doc's name for each system (a peer's and cbor-x's version follow it where `versioned`). */
export const NAMES: Readonly<Record<string, string>> = {
  raw: 'raw net loop (no CBOR)',
  rawcodec: 'raw loop + ipcbor codec',
  rawcborx: 'raw loop + cbor-x',
  rawcborg: 'raw loop + cborg',
  extended: 'ipcbor extended',
  base: 'ipcbor base framing',
  relay: 'ipcbor via TCP relay',
  bridge: 'ipcbor via WebSocket bridge',
  nodeipc: 'node-ipc',
  jsonrpc: 'vscode-jsonrpc',
  grpc: '@grpc/grpc-js',
  zeromq: 'zeromq',
};

/** Column heads of the throughput table. */
const HEADS: Record<string, string> = {
  W1: 'W1 sequential',
  W2: 'W2 64 in flight',
  W3: 'W3 1 MiB',
  W4: 'W4 100 clients',
  W5: 'W5 1,000 clients',
  W6: 'W6 10,000 clients, 1 call / 100 ms',
};

const THROUGHPUT = ['raw', 'rawcodec', 'rawcborx', 'rawcborg', 'extended', 'base', 'relay', 'bridge', 'nodeipc', 'jsonrpc', 'grpc', 'zeromq'];
const LATENCY = ['raw', 'rawcodec', 'rawcborx', 'rawcborg', 'extended', 'base', 'nodeipc', 'zeromq', 'jsonrpc', 'grpc'];
const CPU = ['raw', 'rawcodec', 'rawcborx', 'rawcborg', 'extended', 'base', 'nodeipc'];

const row = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
const table = (head: readonly string[], rows: readonly (readonly string[])[]) => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

function name(s: SystemReport, versioned: boolean): string {
  const n = NAMES[s.id] ?? s.label;
  return versioned && s.version && (s.kind === 'peer' || s.id === 'rawcborx') ? `${n} ${s.version}` : n;
}

/** ipcbor extended's row is bold. */
const bold = (s: SystemReport, x: string) => (s.id === 'extended' ? `**${x}**` : x);

function present(r: Report, order: readonly string[]): SystemReport[] {
  return order.map((id) => r.systems.find((s) => s.id === id)).filter((s): s is SystemReport => s !== undefined);
}

/** Why a system has no figure on a workload, if it has none (a cell with no sample was not run). */
function status(r: Report, w: string, s: SystemReport): string | undefined {
  return statusOf(r, w, s) ?? ((r.cells[`${w}/${s.id}`]?.samples.length ?? 0) === 0 ? 'not run' : undefined);
}

/** A throughput figure as the doc shows it. */
function shownFigure(r: Report, w: string, s: string): string {
  const v = figure(r, w, s);
  return v === undefined ? 'not run' : fmt(v, r.workloads.find((x) => x.id === w)?.unit ?? 'calls/s');
}

export function throughputTable(r: Report): string {
  const ws = r.workloads.map((w) => w.id);
  const rows = present(r, THROUGHPUT).map((s) => [name(s, true), ...ws.map((w) => status(r, w, s) ?? shownFigure(r, w, s.id))].map((x) => bold(s, x)));
  return table(['system', ...ws.map((w) => HEADS[w] ?? w)], rows);
}

export function latencyTable(r: Report): string {
  const ws = ['W1', 'W4', 'W5'].filter((w) => r.workloads.some((x) => x.id === w));
  const rows = present(r, LATENCY)
    .filter((s) => !s.unavailable)
    .map((s) =>
      [
        name(s, s.id !== 'rawcborx'),
        ...ws.map((w) => {
          const c = r.cells[`${w}/${s.id}`];
          return c && c.p99s.length > 0 ? `${us(median(c.p50s))} / ${us(median(c.p99s))}` : (status(r, w, s) ?? '-');
        }),
      ].map((x) => bold(s, x)),
    );
  return table(['system', ...ws], rows);
}

export function cpuTable(r: Report): string {
  const ws = ['W2', 'W4', 'W5', 'W6'].filter((w) => r.workloads.some((x) => x.id === w));
  const rows = present(r, CPU)
    .filter((s) => !s.unavailable)
    .map((s) =>
      [
        name(s, s.id !== 'rawcborx'),
        ...ws.map((w) => {
          const c = cpuPerCall(r, w, s.id);
          return c ? `${c.total.toFixed(1)} = ${c.client.toFixed(1)} + ${c.server.toFixed(1)}` : (status(r, w, s) ?? '-');
        }),
      ].map((x) => bold(s, x)),
    );
  return table(['system', ...ws], rows);
}

/** The verdicts stored in the report (those with a ratio). */
export function targetsTable(r: Report): string {
  const rows = r.targets
    .filter((t) => t.ratio !== undefined)
    .map((t) => [t.what, t.workload, t.ratio!.toFixed(3), `${t.op === '>=' ? '≥' : '≤'} ${t.bound}`, t.met ? 'met' : '**not met**']);
  return table(['target', 'workload', 'ratio', 'bound', 'verdict'], rows);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url));
  const r = JSON.parse(readFileSync(file, 'utf8')) as Report;
  console.log(['Throughput:', throughputTable(r), '', 'Latency, p50 / p99:', latencyTable(r), '', 'CPU per call:', cpuTable(r), '', 'Targets:', targetsTable(r)].join('\n'));
}
