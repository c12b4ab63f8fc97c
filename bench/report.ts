/**
 * The bench report: its JSON shape, the text tables, and the SVG chart
 * (hand-written SVG, no dependency: one panel per workload, a bar per
 * system, each bar annotated with its figure and its ratio to ipcbor
 * extended).
 */
import type { TargetResult } from './targets.js';

export interface SystemReport {
  id: string;
  label: string;
  kind: 'baseline' | 'ipcbor' | 'peer';
  /** The package measured (node:net for the raw loop) and its version. */
  pkg?: string;
  version?: string;
  note?: string;
  /** What stands between its client and the server (ipcbor through a relay): judged against direct ipcbor extended, not the raw loop. */
  via?: string;
  /** The workloads it runs, and why not the others (absent: all). */
  only?: { workloads: string[]; why: string };
  /** Lowest acceptable figure over ipcbor extended's, by workload. */
  targets?: Record<string, number>;
  /** Why it did not run. */
  unavailable?: string;
}

/** Server memory, bytes. */
export interface Mem {
  rss: number;
  heapUsed: number;
}

export interface CellReport {
  /** One figure per repeat (calls/s, or MiB/s for W3). */
  samples: number[];
  /** Per-repeat latency percentiles, microseconds (workloads with latency). */
  p50s: number[];
  p99s: number[];
  /**
   * CPU time per completed call, user + system, microseconds, per repeat:
   * the client process, and the server process(es) (a relay and the server
   * behind it, summed), each read in its own process over the window.
   */
  cpu: { client: number[]; server: number[] };
  /** Workloads with memory (W6): the server's, after GCs, idle before the connections opened and at the window's end. */
  memory?: { baseline: Mem; end: Mem };
  /** Why the system was not run on this workload, known before trying (it cannot hold its connections here). */
  unavailable?: string;
  errors: string[];
  /** The medians over repeats of the above, as the tables show them (written once the run is over). */
  summary?: { figure?: number; p50?: number; p99?: number; cpu?: { client: number; server: number; total: number } };
}

/**
 * One system's windows in a paired group (see run.ts, the paired rounds):
 * entry i of each list is round i; null where that window has no such
 * figure.
 */
export interface PairedSeries {
  /** calls/s (MiB/s on W3). */
  rates: number[];
  /** Latency percentiles, microseconds (workloads with latency; empty on the others). */
  p50s: (number | null)[];
  p99s: (number | null)[];
  /** CPU per call, microseconds: the client, and its server(s). */
  cpu: { client: number[]; server: (number | null)[] };
}

/** ipcbor extended and the systems it is judged against on one workload, measured in alternating windows. */
export interface PairedGroup {
  workload: string;
  systems: string[];
  series: Record<string, PairedSeries>;
  /** Why the group stopped short (its ratios are then not used). */
  error?: string;
}

export interface WorkloadReport {
  id: string;
  title: string;
  unit: 'calls/s' | 'MiB/s';
  connections: number;
  inflight: number;
  /** Paced: each connection starts a call this often, ms; `offered` calls/s in all. */
  periodMs?: number;
  offered?: number;
  /** Measured once per system with this warm-up and window, seconds (not `meta`'s). */
  once?: { warmup: number; seconds: number };
}

export interface Report {
  meta: { date: string; node: string; cpu: string; cores: number; pinned: boolean; seconds: number; warmup: number; repeats: number; elapsedSeconds?: number;
    /** 1-minute load average when the run started and ended: other work on the machine skews every figure. */
    loadBefore?: number;
    loadAfter?: number;
    /** Pinned, with a relay in the run: the CPU the relay processes ran on. */
    relayCpu?: number;
    /** The checkout measured (git describe), when known. */
    commit?: string;
  };
  workloads: WorkloadReport[];
  systems: SystemReport[];
  /** Keyed "W1/extended". */
  cells: Record<string, CellReport>;
  /**
   * The paired rounds the targets are judged on: `rounds` in all, over
   * `sessions` sets of fresh client processes warmed up for `warmup` s;
   * each window `windowMs` after `rampMs` of calls not counted.
   */
  paired?: { sessions: number; rounds: number; windowMs: number; rampMs: number; warmup: number; groups: PairedGroup[] };
  /** ipcbor's targets, judged in this run (bench/targets.ts). */
  targets: TargetResult[];
  /** The idle-memory section (bench/idle.js), when it ran. */
  idle?: { status: number | null; text: string; data?: unknown };
}

export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const cellOf = (r: Report, w: string, s: string) => r.cells[`${w}/${s}`];
export const figure = (r: Report, w: string, s: string) => median(cellOf(r, w, s)?.samples ?? []);
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined);
/** Truncated, not rounded: 0.799 must not print as a passing 0.80. */
const r2 = (x: number) => (Math.floor(x * 100) / 100).toFixed(2);
/** Target ratios are judged on the exact value; three decimals show which side of a bound like 0.95 or 1.1 it fell. */
const r3 = (x: number) => x.toFixed(3);
export const int = (v: number) => Math.round(v).toLocaleString('en-US');
/** Microseconds: one decimal under 100, whole numbers above. */
export const us = (v: number | undefined) => (v === undefined ? '-' : v < 100 ? v.toFixed(1) : int(v));
/** Microseconds shown as milliseconds. */
const ms = (v: number | undefined) => (v === undefined ? '-' : (v / 1000).toFixed(1));
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

export function fmt(v: number | undefined, unit: string): string {
  if (v === undefined) return '-';
  return unit === 'MiB/s' ? `${v.toFixed(1)} MiB/s` : `${int(v)}/s`;
}

function table(head: string[], rows: string[][], leftCols = 1): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((l) => l[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  return [line(head), widths.map((n) => '-'.repeat(n)).join('-|-'), ...rows.map(line)].join('\n');
}

/** Why system `s` has no figure on workload `w`, known from the run (undefined: it ran). */
export function statusOf(r: Report, w: string, s: SystemReport): string | undefined {
  if (s.unavailable) return 'unavailable';
  if (s.only && !s.only.workloads.includes(w)) return 'not run';
  const c = cellOf(r, w, s.id);
  if (c?.unavailable) return 'unavailable';
  if (c && c.errors.length > 0) return 'failed';
  return undefined;
}

const relays = (m: Report['meta']) => (m.relayCpu === undefined ? '' : `, relays on CPU ${m.relayCpu}`);
const load = (m: Report['meta']) => (m.loadBefore === undefined ? '' : ` | load ${m.loadBefore.toFixed(1)}${m.loadAfter === undefined ? '' : ` to ${m.loadAfter.toFixed(1)}`}`);

/** Every system on every workload, with its ratio to ipcbor extended. */
function throughput(r: Report): string[] {
  const ext = 'extended';
  const hasExt = r.systems.some((s) => s.id === ext && !s.unavailable);
  const head = ['system', ...r.workloads.map((w) => `${w.id} ${w.title}`)];
  const rows = r.systems.map((s) => [
    s.label,
    ...r.workloads.map((w) => {
      const st = statusOf(r, w.id, s);
      if (st) return st;
      const v = figure(r, w.id, s.id);
      const x = hasExt ? ratio(v, figure(r, w.id, ext)) : undefined;
      return `${fmt(v, w.unit)}${x !== undefined ? ` ${x.toFixed(2)}x` : ''}`;
    }),
  ]);
  const once = r.workloads.filter((w) => w.once);
  return [
    table(head, rows),
    '',
    `Figures are medians; "1.23x" is the system's figure over ipcbor extended's on that workload (above 1: faster than ipcbor).`,
    ...(r.workloads.some((w) => w.unit === 'MiB/s') ? ['W3 MiB/s counts the 1 MiB payload once per call (it crosses the socket both ways).'] : []),
    ...once.map((w) => `${w.id} is measured once per system (${w.once!.warmup} s warm-up, ${w.once!.seconds} s measured), not ${r.meta.repeats} times: its figure is that one run${w.offered ? `; it offers ${int(w.offered)} calls/s in all` : ''}.`),
  ];
}

/** The paired rounds: each group's systems, their median window, and ipcbor extended's per-round ratio to them. */
function pairedRounds(r: Report): string[] {
  const p = r.paired;
  if (!p || p.groups.length === 0) return [];
  const label = (id: string) => r.systems.find((s) => s.id === id)?.label ?? id;
  const rows: string[][] = [];
  for (const g of p.groups) {
    const w = r.workloads.find((x) => x.id === g.workload);
    const ext = g.series[g.systems[0]!]!;
    for (const id of g.systems) {
      const x = g.series[id]!;
      const per = ext.rates.map((v, i) => v / x.rates[i]!).filter((v) => Number.isFinite(v));
      rows.push([
        g.workload,
        label(id),
        g.error !== undefined ? `failed: ${g.error}` : fmt(median(x.rates), w?.unit ?? 'calls/s'),
        id === g.systems[0] || g.error !== undefined ? '' : r3(median(per) ?? NaN),
        x.p99s.length > 0 ? us(median(x.p99s.filter((v): v is number => v !== null))) : '',
      ]);
    }
  }
  return [
    '',
    `Paired rounds (what the targets are judged on): on each workload, ipcbor extended and the systems it is judged against, each with its own client process, all connected at once and warmed up ${p.warmup} s each; then rounds in which each measures a ${p.windowMs} ms window in turn (order rotating), the others idle; ${p.rounds} rounds in all, over ${p.sessions} sets of fresh processes. A target's ratio is the median over rounds of the two systems' ratio in the same round.`,
    table(['workload', 'system', 'median window', 'extended / it, median per round', 'p99 us'], rows, 2),
  ];
}

function targets(r: Report): string[] {
  if (r.targets.length === 0) return [];
  const rows = r.targets.map((t) => [
    t.what,
    t.workload,
    t.ratio === undefined ? '-' : r3(t.ratio),
    `${t.op} ${t.bound}`,
    t.met === undefined ? `not judged: ${t.unjudged}` : t.met ? 'met' : 'NOT MET',
  ]);
  const fromCells = r.targets.some((t) => t.basis === 'cells');
  const fromPairs = r.targets.some((t) => t.basis === 'paired');
  const basis = fromPairs && fromCells ? 'the paired rounds where the run has them, else the cells\' medians' : fromPairs ? 'the paired rounds below' : 'the cells\' medians';
  return ['', `Targets (ratios of figures measured in this run, from ${basis}):`, table(['target', 'workload', 'ratio', 'bound', 'verdict'], rows, 2)];
}

/** ipcbor through a relay, over ipcbor extended direct. */
function relayed(r: Report): string[] {
  const ext = 'extended';
  const hasExt = r.systems.some((s) => s.id === ext && !s.unavailable);
  const via = r.systems.filter((s) => s.via !== undefined && !s.unavailable);
  const targeted = r.workloads.filter((w) => via.some((s) => !s.only || s.only.workloads.includes(w.id)));
  if (!hasExt || via.length === 0 || targeted.length === 0) return [];
  const th = ['workload', ...via.map((s) => `${s.id} / extended`)];
  const tr = targeted.map((w) => [
    w.id,
    ...via.map((s) => {
      const st = statusOf(r, w.id, s);
      if (st) return st;
      const x = ratio(figure(r, w.id, s.id), figure(r, w.id, ext));
      const t = s.targets?.[w.id];
      if (x === undefined) return '-';
      return t === undefined ? r2(x) : `${r2(x)} ${x >= t ? 'met' : 'NOT MET'} (>= ${t})`;
    }),
  ]);
  return ['', 'Through a relay (figure / ipcbor extended direct, same run):', table(th, tr)];
}

/** p50 / p99 of every system on the workloads that time their calls (the paced one apart). */
function latency(r: Report): string[] {
  const ws = r.workloads.filter((w) => !w.periodMs && r.systems.some((s) => (cellOf(r, w.id, s.id)?.p99s.length ?? 0) > 0));
  if (ws.length === 0) return [];
  const rows = r.systems
    .filter((s) => !s.unavailable)
    .map((s) => [
      s.label,
      ...ws.map((w) => {
        const c = cellOf(r, w.id, s.id);
        return statusOf(r, w.id, s) ?? (c && c.p99s.length > 0 ? `${us(median(c.p50s))} / ${us(median(c.p99s))}` : '-');
      }),
    ]);
  return ['', 'Latency per call, p50 / p99, microseconds (the median over repeats of each repeat\'s percentile):', table(['system', ...ws.map((w) => `${w.id} p50 / p99`)], rows)];
}

/** CPU per call, client + server, on every workload. */
function cpu(r: Report): string[] {
  const rows = r.systems
    .filter((s) => !s.unavailable)
    .map((s) => [
      s.label,
      ...r.workloads.map((w) => {
        const c = cellOf(r, w.id, s.id)?.cpu;
        const st = statusOf(r, w.id, s);
        if (st || !c || c.client.length === 0) return st ?? '-';
        const client = median(c.client)!;
        if (c.server.length === 0) return `${us(client)} (client only)`;
        const server = median(c.server)!;
        return `${us(median(c.server.map((x, i) => x + c.client[i]!)))} = ${us(client)} + ${us(server)}`;
      }),
    ]);
  return [
    '',
    'CPU per call, microseconds: client + server = total (user + system time of each process over the window, each read in its own process; a relay counts with its server; median over repeats):',
    table(['system', ...r.workloads.map((w) => w.id)], rows),
  ];
}

/** The paced workload with memory (W6): rate against the offer, latency, the server's memory. */
function paced(r: Report): string[] {
  const out: string[] = [];
  for (const w of r.workloads.filter((x) => x.periodMs)) {
    const rows = r.systems
      .filter((s) => !s.unavailable && !(s.only && !s.only.workloads.includes(w.id)))
      .map((s) => {
        const c = cellOf(r, w.id, s.id);
        const st = statusOf(r, w.id, s);
        if (st || !c || c.samples.length === 0) return [s.label, st ?? '-', '', '', '', '', '', '', ''];
        const m = c.memory;
        const total = c.cpu.server.length > 0 ? c.cpu.server[0]! + c.cpu.client[0]! : undefined;
        return [
          s.label,
          `${fmt(figure(r, w.id, s.id), w.unit)}${w.offered ? ` (${((figure(r, w.id, s.id)! / w.offered) * 100).toFixed(0)}%)` : ''}`,
          ms(median(c.p50s)),
          ms(median(c.p99s)),
          m ? mib(m.end.rss) : '-',
          m ? mib(m.end.heapUsed) : '-',
          m ? `+${mib(m.end.rss - m.baseline.rss)}` : '-',
          m ? `+${mib(m.end.heapUsed - m.baseline.heapUsed)} (${int((m.end.heapUsed - m.baseline.heapUsed) / w.connections)} B/conn)` : '-',
          us(total),
        ];
      });
    out.push('');
    out.push(`${w.id}: ${int(w.connections)} connections to one server, each starting a call every ${w.periodMs} ms (offered ${int(w.offered ?? 0)} calls/s), schedules spread over the first ${w.periodMs} ms:`);
    out.push(table(['system', 'achieved (of offered)', 'p50 ms', 'p99 ms', 'server RSS', 'heap used', 'RSS growth', 'heap growth', 'CPU us/call'], rows));
    out.push(`Server memory read in the server after two GCs: at the window's end, and growth over its idle baseline before the connections opened (${w.once ? `one run, ${w.once.warmup} s warm-up, ${w.once.seconds} s measured` : 'median run'}).`);
    out.push('RSS seldom shrinks back after earlier cells, so where systems share a server (ipcbor extended and base) heap growth compares them better.');
  }
  return out;
}

function notes(r: Report): string[] {
  const out: string[] = [];
  const noted = r.systems.filter((s) => s.note || s.unavailable || s.only);
  if (noted.length > 0) out.push('');
  for (const s of noted) {
    const skipped = r.workloads.filter((w) => s.only && !s.only.workloads.includes(w.id)).map((w) => w.id);
    const why = skipped.length > 0 ? `not run on ${skipped.join(', ')}: ${s.only!.why}` : undefined;
    out.push(`${s.label}: ${s.unavailable ? `unavailable: ${s.unavailable}` : [s.note, why].filter(Boolean).join('; ')}`);
  }
  for (const [k, c] of Object.entries(r.cells)) {
    if (c.errors.length === 0 && !c.unavailable) continue;
    const [w, id] = k.split('/') as [string, string];
    const s = r.systems.find((x) => x.id === id);
    // A peer that cannot hold a paced workload's many connections is not a failure of the run.
    const peerCannot = c.unavailable !== undefined || (s?.kind === 'peer' && r.workloads.find((x) => x.id === w)?.periodMs !== undefined);
    out.push(`${s?.label ?? id}: ${peerCannot ? `unavailable on ${w}` : `${w} failed`}: ${c.unavailable ?? c.errors[0]}`);
  }
  return out;
}

export function renderTables(r: Report): string {
  const m = r.meta;
  const out: string[] = [
    `node ${m.node} | ${m.cpu} | ${m.cores} cores${m.pinned ? `, client on CPU 0, servers on CPU 1${relays(m)}` : ', not pinned'} | median of ${m.repeats} x ${m.seconds} s per cell after ${m.warmup} s warm-up${load(m)}${m.commit ? ` | ipcbor ${m.commit}` : ''}`,
    '',
    ...throughput(r),
    ...targets(r),
    ...pairedRounds(r),
    ...relayed(r),
    ...latency(r),
    ...cpu(r),
    ...paced(r),
    ...notes(r),
  ];
  if (r.idle) {
    out.push('');
    out.push(`Idle connections (bench/idle.js${r.idle.status === 0 ? '' : `, exit ${r.idle.status}`}):`);
    out.push(r.idle.text);
  }
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLORS: Record<string, string> = {
  raw: '#8d939a',
  rawcodec: '#b3b8be',
  rawcborx: '#a5abb3',
  rawcborg: '#c9cdd2',
  extended: '#1a66d2',
  base: '#6b9de6',
  relay: '#2f4f8f',
  bridge: '#5a78b0',
  jsonrpc: '#e0892b',
  grpc: '#3aa76d',
  zeromq: '#b8503f',
  nodeipc: '#8c5bbf',
};

/** Lines of at most `width` characters, broken at spaces (the SVG has no text wrapping). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

function short(v: number, unit: string): string {
  if (unit === 'MiB/s') return `${v.toFixed(v < 10 ? 1 : 0)} MiB/s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M/s`;
  if (v >= 1e4) return `${Math.round(v / 1e3)}k/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k/s`;
  return `${Math.round(v)}/s`;
}

/** One panel per workload, one bar per system (scaled to the panel's best), figure and ratio to ipcbor extended at the bar's end. */
export function renderSvg(r: Report): string {
  const W = 900;
  // Labels name the package and version measured.
  const labelW = 270;
  const barMax = 420;
  const rowH = 20;
  const m = r.meta;
  const parts: string[] = [];
  let y = 58;
  parts.push(`<text x="16" y="26" class="title">ipcbor vs the Node limit and Node IPC libraries (higher is better)</text>`);
  parts.push(
    `<text x="16" y="44" class="meta">${esc(`${m.date.slice(0, 10)} · node ${m.node} · ${m.cores} cores${m.pinned ? ` (client CPU 0, servers CPU 1${relays(m).replace(' on', '')})` : ''} · median of ${m.repeats} × ${m.seconds} s${load(m).replace(' |', ' ·')} · unix sockets · ratio = system / ipcbor extended`)}</text>`,
  );
  for (const w of r.workloads) {
    const values = r.systems.map((s) => (s.unavailable ? undefined : figure(r, w.id, s.id)));
    const max = Math.max(1, ...values.filter((v): v is number => v !== undefined));
    const ext = figure(r, w.id, 'extended');
    y += 10;
    const offer = w.offered ? ` achieved of ${int(w.offered)} offered` : '';
    const once = w.once ? ` · once per system, ${w.once.seconds} s` : '';
    parts.push(`<text x="16" y="${y + 4}" class="panel">${esc(`${w.id} · ${w.title} · ${w.unit}${offer}${once}`)}</text>`);
    y += 12;
    r.systems.forEach((s, i) => {
      const v = values[i];
      const top = y + i * rowH;
      const mid = top + rowH / 2 + 4;
      const strong = s.kind === 'ipcbor' ? ' strong' : '';
      parts.push(`<text x="${labelW - 8}" y="${mid}" class="label${strong}" text-anchor="end">${esc(s.label)}</text>`);
      const st = statusOf(r, w.id, s);
      if (st || v === undefined) {
        parts.push(`<text x="${labelW + 4}" y="${mid}" class="na">${st ?? 'not run'}</text>`);
        return;
      }
      const len = Math.max(1, (v / max) * barMax);
      parts.push(`<rect x="${labelW}" y="${top + 3}" width="${len.toFixed(1)}" height="${rowH - 6}" rx="2" fill="${COLORS[s.id] ?? '#999'}"/>`);
      const x = ratio(v, ext);
      const note = s.id === 'extended' ? ' · reference' : x === undefined ? '' : ` · ${x.toFixed(2)}×`;
      const c = cellOf(r, w.id, s.id)?.cpu;
      const cpu = c && c.server.length > 0 ? ` · CPU ${us(median(c.server.map((v, i) => v + c.client[i]!)))} µs/call` : '';
      parts.push(`<text x="${(labelW + len + 6).toFixed(1)}" y="${mid}" class="value${strong}">${esc(short(v, w.unit) + note + cpu)}</text>`);
    });
    y += r.systems.length * rowH + 6;
  }
  y += 8;
  const footnotes = [
    ...r.systems.filter((s) => s.unavailable).map((s) => `${s.label}: unavailable: ${s.unavailable}`),
    ...Object.entries(r.cells)
      .filter(([, c]) => c.unavailable)
      .map(([k, c]) => `${r.systems.find((s) => s.id === k.split('/')[1])?.label ?? k}: unavailable on ${k.split('/')[0]}: ${c.unavailable}`),
    ...r.workloads.filter((w) => w.once).map((w) => `${w.id}: measured once per system (${w.once!.warmup} s warm-up, ${w.once!.seconds} s).`),
    ...(r.workloads.some((w) => w.id === 'W3') ? ['W3: JSON peers carry the 1 MiB as base64 text; grpc and zeromq as raw bytes.'] : []),
    'CPU: client + server µs per call, each process read over the window. Source: bench/run.ts (npm run bench).',
  ];
  for (const line of footnotes.flatMap((f) => wrap(f, 150))) {
    parts.push(`<text x="16" y="${y}" class="meta">${esc(line)}</text>`);
    y += 14;
  }
  if (r.systems.some((s) => s.via !== undefined && !s.unavailable)) {
    parts.push(`<text x="16" y="${y}" class="meta">Via relay / bridge: a relay process between client (TCP or WebSocket on loopback) and the ipcbor server (unix socket).</text>`);
    y += 14;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
    '<style>',
    '.title{font-size:16px;font-weight:600;fill:#222}.meta{font-size:11px;fill:#666}.panel{font-size:13px;font-weight:600;fill:#333}',
    '.label{font-size:12px;fill:#333}.value{font-size:11px;fill:#333}.strong{font-weight:600}.na{font-size:11px;fill:#999;font-style:italic}',
    '</style>',
    `<rect width="${W}" height="${y}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
