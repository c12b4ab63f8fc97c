/**
 * How the bench judges ipcbor's targets (bench/targets.ts): from the paired
 * rounds when the run has them (the median over rounds of each round's
 * ratio), else from the cells' medians. Reports are built here by hand, so
 * every figure and the ratio it must give are known.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CellReport, PairedGroup, PairedSeries, Report } from '../../bench/report.js';
import { judge, pairedRatio, referencesOn } from '../../bench/targets.js';

const cell = (samples: number[], extra: Partial<CellReport> = {}): CellReport => ({ samples, p50s: [], p99s: [], cpu: { client: [], server: [] }, errors: [], ...extra });

const series = (rates: number[], extra: Partial<PairedSeries> = {}): PairedSeries => ({ rates, p50s: [], p99s: [], cpu: { client: [], server: [] }, ...extra });

function report(cells: Record<string, CellReport>, groups?: PairedGroup[]): Report {
  const ids = ['raw', 'rawcodec', 'rawcborx', 'extended', 'nodeipc'];
  return {
    meta: { date: '2026-01-01T00:00:00Z', node: 'v0', cpu: 'test', cores: 2, pinned: true, seconds: 2, warmup: 2, repeats: 3 },
    workloads: [
      { id: 'W1', title: 'sequential', unit: 'calls/s', connections: 1, inflight: 1 },
      { id: 'W4', title: '100 clients', unit: 'calls/s', connections: 100, inflight: 1 },
      { id: 'W5', title: '1,000 clients', unit: 'calls/s', connections: 1000, inflight: 1 },
    ],
    systems: ids.map((id) => ({ id, label: id, kind: id === 'extended' ? 'ipcbor' : id === 'nodeipc' ? 'peer' : 'baseline' })),
    cells,
    ...(groups ? { paired: { sessions: 1, rounds: 3, windowMs: 1000, rampMs: 100, warmup: 2, groups } } : {}),
    targets: [],
  };
}

const verdict = (r: Report, workload: string, against: string) => judge(r).find((t) => t.workload === workload && t.against === against)!;

describe('bench targets', () => {
  it('names, per workload, the systems ipcbor extended is judged against', () => {
    assert.deepEqual(referencesOn('W1').sort(), ['nodeipc', 'raw', 'rawcodec']);
    assert.deepEqual(referencesOn('W3'), ['rawcodec']);
    assert.deepEqual(referencesOn('W5').sort(), ['nodeipc', 'rawcborx', 'rawcodec']);
    assert.deepEqual(referencesOn('W6'), []);
  });

  it('takes a rate ratio from the paired rounds: the median of the per-round ratios, not the ratio of the medians', () => {
    // Rounds 1-3: extended 100, 80, 120 against rawcodec 100, 100, 100 -> ratios 1.0, 0.8, 1.2 (median 1.0).
    // Against nodeipc 90, 100, 150 -> ratios 1.111, 0.8, 0.8 (median 0.8), while the medians give 100 / 100 = 1.0.
    const g: PairedGroup = {
      workload: 'W4',
      systems: ['extended', 'nodeipc', 'rawcodec'],
      series: { extended: series([100, 80, 120]), nodeipc: series([90, 100, 150]), rawcodec: series([100, 100, 100]) },
    };
    // The cells alone would say 0.5 against both.
    const cells = { 'W4/extended': cell([50]), 'W4/nodeipc': cell([100]), 'W4/rawcodec': cell([100]) };
    const r = report(cells, [g]);
    const codec = verdict(r, 'W4', 'rawcodec');
    assert.equal(codec.basis, 'paired');
    assert.equal(codec.rounds, 3);
    assert.equal(codec.ratio, 1);
    assert.equal(codec.met, true);
    const ipc = verdict(r, 'W4', 'nodeipc');
    assert.equal(ipc.basis, 'paired');
    assert.equal(ipc.ratio, 0.8);
    assert.equal(ipc.met, false);
  });

  it('judges CPU per call (client + server of the same round) and p99 per round too', () => {
    const g: PairedGroup = {
      workload: 'W5',
      systems: ['extended', 'rawcborx'],
      series: {
        extended: series([1, 1, 1], { cpu: { client: [10, 9, 30], server: [5, 6, 0] } }),
        rawcborx: series([1, 1, 1], { cpu: { client: [8, 10, 10], server: [4, 5, 5] } }),
      },
    };
    // Totals 15, 15, 30 over 12, 15, 15 -> 1.25, 1.0, 2.0: median 1.25.
    assert.deepEqual(pairedRatio(report({}, [g]), 'cpu', 'W5', 'extended', 'rawcborx'), { ratio: 1.25, rounds: 3 });
    const p: PairedGroup = {
      workload: 'W1',
      systems: ['extended', 'raw'],
      series: { extended: series([1, 1, 1], { p99s: [110, 130, 100] }), raw: series([1, 1, 1], { p99s: [100, 100, 100] }) },
    };
    assert.deepEqual(pairedRatio(report({}, [p]), 'p99', 'W1', 'extended', 'raw'), { ratio: 1.1, rounds: 3 });
  });

  it('falls back to the cells\' medians when the paired group failed or is missing', () => {
    const cells = { 'W4/extended': cell([90, 100, 110]), 'W4/rawcodec': cell([100, 100, 100]), 'W4/nodeipc': cell([200, 200, 200]) };
    const failed: PairedGroup = {
      workload: 'W4',
      systems: ['extended', 'rawcodec'],
      series: { extended: series([300]), rawcodec: series([100]) },
      error: 'rawcodec: its client process left',
    };
    const r = report(cells, [failed]);
    const codec = verdict(r, 'W4', 'rawcodec');
    assert.equal(codec.basis, 'cells');
    assert.equal(codec.ratio, 1);
    // No group holds nodeipc: its cells judge it.
    const ipc = verdict(r, 'W4', 'nodeipc');
    assert.equal(ipc.basis, 'cells');
    assert.equal(ipc.ratio, 0.5);
    // A run with no paired rounds at all.
    assert.equal(verdict(report(cells), 'W4', 'rawcodec').basis, 'cells');
  });

  it('a round missing a figure is left out of the median without moving the later rounds, and none at all leaves the cells to judge', () => {
    // Round 2 of extended has no p99: rounds 1 and 3 pair 120/100 and 150/100 (median 1.35). Had round 3's
    // figure moved up to round 2, the pairs would be 120/100 and 150/200 (median 0.975).
    const g: PairedGroup = {
      workload: 'W1',
      systems: ['extended', 'raw'],
      series: { extended: series([1, 1, 1], { p99s: [120, null, 150] }), raw: series([1, 1, 1], { p99s: [100, 200, 100] }) },
    };
    assert.deepEqual(pairedRatio(report({}, [g]), 'p99', 'W1', 'extended', 'raw'), { ratio: 1.35, rounds: 2 });
    // A server figure missing in one round leaves that round out of the CPU ratio only.
    const c: PairedGroup = {
      workload: 'W5',
      systems: ['extended', 'rawcborx'],
      series: {
        extended: series([1, 1], { cpu: { client: [10, 10], server: [null, 10] } }),
        rawcborx: series([1, 1], { cpu: { client: [10, 10], server: [10, 10] } }),
      },
    };
    assert.deepEqual(pairedRatio(report({}, [c]), 'cpu', 'W5', 'extended', 'rawcborx'), { ratio: 1, rounds: 1 });
    const none: PairedGroup = { ...g, series: { extended: series([1]), raw: series([0]) } };
    assert.equal(pairedRatio(report({}, [none]), 'rate', 'W1', 'extended', 'raw'), undefined);
    // W1 against raw is the p99 target: the group has no p99 in any round, so the cells' p99s judge.
    const cells = { 'W1/extended': cell([90], { p99s: [121] }), 'W1/raw': cell([100], { p99s: [110] }) };
    const judged = verdict(report(cells, [none]), 'W1', 'raw');
    assert.equal(judged.basis, 'cells');
    assert.equal(judged.ratio, 1.1);
  });
});
