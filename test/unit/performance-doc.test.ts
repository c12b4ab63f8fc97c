/**
 * docs/PERFORMANCE.md is written from one run of `npm run bench`, whose
 * report is committed (bench/results/latest.json). Its tables (results,
 * latency, CPU per call) and the targets it calls met or not met must be
 * that run's: a figure typed
 * by hand, or a doc left behind by a new run, fails here. (Times nothing:
 * it reads two committed files.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NAMES, cpuTable, latencyTable, targetsTable, throughputTable } from '../../bench/doc-tables.js';
import { figure, type Report } from '../../bench/report.js';
import { judge } from '../../bench/targets.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const report = JSON.parse(readFileSync(root('bench/results/latest.json'), 'utf8')) as Report;
const doc = readFileSync(root('docs/PERFORMANCE.md'), 'utf8');

/** The row labels of the results table, by system id (peers and cbor-x followed by their version). */
const LABELS = NAMES;

/** The first table under "## Results": label -> its cells. */
function resultsTable(): Map<string, string[]> {
  const section = doc.slice(doc.indexOf('## Results'));
  const lines = section.split('\n');
  const first = lines.findIndex((l) => l.startsWith('| system |'));
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim().replaceAll('**', ''));
    rows.set(cells[0]!, cells.slice(1));
  }
  return rows;
}

function shown(w: string, system: string): string {
  const v = figure(report, w, system);
  if (v === undefined) return 'not run';
  return w === 'W3' ? `${v.toFixed(1)} MiB/s` : `${Math.round(v).toLocaleString('en-US')}/s`;
}

describe('docs/PERFORMANCE.md against the committed bench report', () => {
  it('every figure of its results table is the report\'s', () => {
    const rows = resultsTable();
    const workloads = report.workloads.map((w) => w.id);
    assert.deepEqual(workloads, ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'], 'the report is of a full run');
    for (const s of report.systems) {
      const label = [...rows.keys()].find((l) => l.startsWith(LABELS[s.id]!));
      assert.ok(label, `a row for ${s.id}`);
      const cells = rows.get(label)!;
      workloads.forEach((w, i) => {
        if (cells[i] === 'unavailable' || cells[i] === 'not run') {
          assert.equal(figure(report, w, s.id), undefined, `${s.id} ${w}: the doc says ${cells[i]}`);
          return;
        }
        assert.equal(cells[i], shown(w, s.id), `${s.id} ${w}`);
      });
    }
  });

  it('its throughput, latency, CPU and targets tables are bench/doc-tables.js\'s, word for word', () => {
    for (const [what, t] of [
      ['throughput', throughputTable(report)],
      ['latency', latencyTable(report)],
      ['CPU per call', cpuTable(report)],
      ['targets', targetsTable(report)],
    ] as const) {
      assert.ok(doc.includes(`\n${t}\n`), `the ${what} table is not the report's; doc-tables.js prints it:\n${t}`);
    }
  });

  it('its targets table is the run\'s verdicts: every target, ratio and verdict', () => {
    const section = doc.slice(doc.indexOf('**Targets**, as this run judged them'));
    const lines = section.split('\n');
    const first = lines.findIndex((l) => l.startsWith('| target |'));
    assert.ok(first >= 0, 'a targets table follows');
    const rows: string[][] = [];
    for (const line of lines.slice(first + 2)) {
      if (!line.startsWith('|')) break;
      rows.push(line.split('|').slice(1, -1).map((c) => c.trim().replaceAll('**', '')));
    }
    const verdicts = judge(report).filter((v) => v.ratio !== undefined);
    assert.deepEqual(
      rows,
      verdicts.map((v) => [v.what, v.workload, v.ratio!.toFixed(3), `${v.op === '>=' ? '≥' : '≤'} ${v.bound}`, v.met ? 'met' : 'not met']),
    );
  });
});
