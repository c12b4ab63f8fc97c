/**
 * Summarise `.cpuprofile` files (from `node --cpu-prof`): the functions
 * with the most self time, and self time per source file.
 *
 *   node dist/bench/profile-top.js FILE.cpuprofile [more...] [--top N]
 *
 * To profile a cell, e.g. W2 over the extended protocol:
 *
 *   BENCH_ONLY=W2 BENCH_IMPLS=extended BENCH_REPEATS=1 BENCH_PROFILE_DIR=/tmp/prof \
 *     node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/run.js
 *
 * (the servers write their profiles there too; the raw server's is idle).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function short(url: string): string {
  if (url === '') return '(native)';
  const m = /node_modules\/(.+)$/.exec(url) ?? /\/(src|bench|dist)\/(.+)$/.exec(url);
  return m ? m[0].replace(/^\//, '') : basename(url);
}

function summarise(file: string, top: number): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Self time per node: each sample's time delta goes to the sampled node.
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const nameOf = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || '(anonymous)'}  ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  };
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  // Inclusive time: the node and every caller above it (each function once per stack).
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const name = nameOf(id);
    fns.set(name, (fns.get(name) ?? 0) + us);
    const url = short(byId.get(id)!.callFrame.url);
    if (!name.startsWith('(idle)') && !name.startsWith('(program)')) files.set(url, (files.get(url) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = nameOf(at);
      if (seen.has(n)) continue;
      seen.add(n);
      inclusive.set(n, (inclusive.get(n) ?? 0) + us);
    }
  }
  const idle = [...fns].filter(([k]) => k.startsWith('(idle)') || k.startsWith('(program)')).reduce((a, [, v]) => a + v, 0);
  // Percentages are of busy time (not idle), which is what a faster library would cut.
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`\n== ${basename(file)}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy; % of busy time`);
  console.log('  -- self time --');
  for (const [name, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) if (!name.startsWith('(idle)')) console.log(`${pct(us)}  ${name}`);
  console.log('  -- self time by file --');
  for (const [name, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`${pct(us)}  ${name}`);
  console.log('  -- inclusive time, ipcbor and cborg functions --');
  const ours = [...inclusive].filter(([k]) => /(src|cborg)\//.test(k));
  for (const [name, us] of ours.sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${name}`);
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
if (args.length === 0) {
  console.error('usage: node dist/bench/profile-top.js FILE.cpuprofile [more...] [--top N]');
  process.exit(2);
}
for (const f of args) summarise(f, top);
