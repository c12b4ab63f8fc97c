/**
 * The bench report: its JSON shape, the text tables, and the SVG chart
 * (hand-written SVG, no dependency: one panel per workload, a bar per
 * system, each bar annotated with its figure and its ratio to ipcbor
 * extended).
 */
export interface SystemReport {
  id: string;
  label: string;
  kind: 'baseline' | 'ipcbor' | 'peer';
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

export interface CellReport {
  /** One figure per repeat (calls/s, or MiB/s for W3). */
  samples: number[];
  /** W1: per-repeat latency percentiles, microseconds. */
  p50s: number[];
  p99s: number[];
  errors: string[];
}

export interface Report {
  meta: { date: string; node: string; cpu: string; cores: number; pinned: boolean; seconds: number; warmup: number; repeats: number; elapsedSeconds?: number;
    /** 1-minute load average when the run started and ended: other work on the machine skews every figure. */
    loadBefore?: number;
    loadAfter?: number;
    /** Pinned, with a relay in the run: the CPU the relay processes ran on. */
    relayCpu?: number;
  };
  workloads: { id: string; title: string; unit: 'calls/s' | 'MiB/s'; connections: number; inflight: number; target: number }[];
  p99Target: number;
  systems: SystemReport[];
  /** Keyed "W1/extended". */
  cells: Record<string, CellReport>;
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

function fmt(v: number | undefined, unit: string): string {
  if (v === undefined) return '-';
  return unit === 'MiB/s' ? `${v.toFixed(1)} MiB/s` : `${Math.round(v).toLocaleString('en-US')}/s`;
}

function table(head: string[], rows: string[][], leftCols = 1): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((l) => l[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  return [line(head), widths.map((n) => '-'.repeat(n)).join('-|-'), ...rows.map(line)].join('\n');
}

/** ipcbor as a client reaches a server itself, not through a relay. */
const direct = (s: SystemReport) => s.kind === 'ipcbor' && s.via === undefined;

function statusOf(r: Report, w: string, s: SystemReport): string | undefined {
  if (s.unavailable) return 'unavailable';
  if (s.only && !s.only.workloads.includes(w)) return 'not run';
  const c = cellOf(r, w, s.id);
  if (c && c.errors.length > 0) return 'failed';
  return undefined;
}

const relays = (m: Report['meta']) => (m.relayCpu === undefined ? '' : `, relays on CPU ${m.relayCpu}`);
const load = (m: Report['meta']) => (m.loadBefore === undefined ? '' : ` | load ${m.loadBefore.toFixed(1)}${m.loadAfter === undefined ? '' : ` to ${m.loadAfter.toFixed(1)}`}`);

export function renderTables(r: Report): string {
  const out: string[] = [];
  const m = r.meta;
  out.push(`node ${m.node} | ${m.cpu} | ${m.cores} cores${m.pinned ? `, client on CPU 0, servers on CPU 1${relays(m)}` : ', not pinned'} | median of ${m.repeats} x ${m.seconds} s per cell after ${m.warmup} s warm-up${load(m)}`);
  out.push('');
  const ext = 'extended';
  const hasExt = r.systems.some((s) => s.id === ext && !s.unavailable);

  // Every system on every workload, with its ratio to ipcbor extended.
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
  out.push(table(head, rows));
  out.push('');
  out.push(`Figures are medians; "1.23x" is the system's figure over ipcbor extended's on that workload (above 1: faster than ipcbor).`);
  out.push('W3 MiB/s counts the 1 MiB payload once per call (it crosses the socket both ways).');

  // Issue 10's targets: ipcbor over the raw loop.
  const raw = 'raw';
  if (r.systems.some((s) => s.id === raw && !s.unavailable) && r.systems.some((s) => direct(s) && !s.unavailable)) {
    out.push('');
    out.push('Targets (ipcbor / raw loop with no CBOR):');
    const ipc = r.systems.filter((s) => direct(s) && !s.unavailable);
    const codec = r.systems.some((s) => s.id === 'rawcodec' && !s.unavailable);
    const th = ['workload', ...ipc.map((s) => `${s.id} / raw`), 'target', ...(codec ? ['raw+codec / raw', 'extended / raw+codec'] : [])];
    const tr = r.workloads.map((w) => {
      const base = figure(r, w.id, raw);
      return [
        w.id,
        ...ipc.map((s) => {
          const x = ratio(figure(r, w.id, s.id), base);
          return x === undefined ? '-' : `${r2(x)} ${x >= w.target ? 'PASS' : 'below'}`;
        }),
        `>= ${w.target}`,
        ...(codec ? [ratio(figure(r, w.id, 'rawcodec'), base), ratio(figure(r, w.id, ext), figure(r, w.id, 'rawcodec'))].map((x) => (x === undefined ? '-' : r2(x))) : []),
      ];
    });
    out.push(table(th, tr));
  }

  // ipcbor through a relay, over ipcbor extended direct.
  const relayed = r.systems.filter((s) => s.via !== undefined && !s.unavailable);
  const targeted = r.workloads.filter((w) => relayed.some((s) => !s.only || s.only.workloads.includes(w.id)));
  if (hasExt && relayed.length > 0 && targeted.length > 0) {
    out.push('');
    out.push('Through a relay (figure / ipcbor extended direct, same run):');
    const th = ['workload', ...relayed.map((s) => `${s.id} / extended`)];
    const tr = targeted.map((w) => [
      w.id,
      ...relayed.map((s) => {
        const st = statusOf(r, w.id, s);
        if (st) return st;
        const x = ratio(figure(r, w.id, s.id), figure(r, w.id, ext));
        const t = s.targets?.[w.id];
        if (x === undefined) return '-';
        return t === undefined ? r2(x) : `${r2(x)} ${x >= t ? 'PASS' : 'below'} (>= ${t})`;
      }),
    ]);
    out.push(table(th, tr));
  }

  // W1 latency.
  if (r.workloads.some((w) => w.id === 'W1')) {
    const rawP99 = median(cellOf(r, 'W1', raw)?.p99s ?? []);
    out.push('');
    out.push(`W1 latency per call, microseconds (median over repeats of each repeat's percentile); target: ipcbor p99 within ${r.p99Target}x of raw's:`);
    const lr = r.systems
      .filter((s) => !s.unavailable && (cellOf(r, 'W1', s.id)?.p99s.length ?? 0) > 0)
      .map((s) => {
        const c = cellOf(r, 'W1', s.id)!;
        const p99 = median(c.p99s)!;
        const x = ratio(p99, rawP99);
        const verdict = x === undefined || !direct(s) ? '' : x <= r.p99Target ? ' PASS' : ' above';
        return [s.label, median(c.p50s)!.toFixed(1), p99.toFixed(1), x === undefined ? '-' : `${x.toFixed(2)}${verdict}`];
      });
    out.push(table(['system', 'p50 us', 'p99 us', 'p99 / raw p99'], lr));
  }

  const notes = r.systems.filter((s) => s.note || s.unavailable || s.only);
  if (notes.length > 0) {
    out.push('');
    for (const s of notes) {
      const skipped = r.workloads.filter((w) => s.only && !s.only.workloads.includes(w.id)).map((w) => w.id);
      const why = skipped.length > 0 ? `not run on ${skipped.join(', ')}: ${s.only!.why}` : undefined;
      out.push(`${s.label}: ${s.unavailable ? `unavailable: ${s.unavailable}` : [s.note, why].filter(Boolean).join('; ')}`);
    }
  }
  const failures = Object.entries(r.cells).filter(([, c]) => c.errors.length > 0);
  for (const [k, c] of failures) out.push(`${k} failed: ${c.errors[0]}`);

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

function short(v: number, unit: string): string {
  if (unit === 'MiB/s') return `${v.toFixed(v < 10 ? 1 : 0)} MiB/s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M/s`;
  if (v >= 1e4) return `${Math.round(v / 1e3)}k/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k/s`;
  return `${Math.round(v)}/s`;
}

/** One panel per workload, one bar per system (scaled to the panel's best), figure and ratio to ipcbor extended at the bar's end. */
export function renderSvg(r: Report): string {
  const W = 820;
  const labelW = 200;
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
    parts.push(`<text x="16" y="${y + 4}" class="panel">${esc(`${w.id} · ${w.title} · ${w.unit}`)}</text>`);
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
      parts.push(`<text x="${(labelW + len + 6).toFixed(1)}" y="${mid}" class="value${strong}">${esc(short(v, w.unit) + note)}</text>`);
    });
    y += r.systems.length * rowH + 6;
  }
  y += 8;
  const unavailable = r.systems.filter((s) => s.unavailable);
  for (const s of unavailable) {
    parts.push(`<text x="16" y="${y}" class="meta">${esc(`${s.label}: unavailable: ${s.unavailable}`)}</text>`);
    y += 16;
  }
  parts.push(`<text x="16" y="${y}" class="meta">W3: JSON peers carry the 1 MiB as base64 text; grpc and zeromq as raw bytes. Source: bench/run.ts (npm run bench).</text>`);
  y += 14;
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
