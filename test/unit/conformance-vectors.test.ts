/**
 * conformance/vectors.json is what test/conformance/vectors-source.ts
 * builds (IPCBOR_WRITE_VECTORS=1 rewrites it), and every case is well formed.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hexToBytes, mismatch, type Vectors } from '../../src/core/conformance/runner.js';
import { vectorsJson } from '../conformance/vectors-source.js';

const file = fileURLToPath(new URL('../../../conformance/vectors.json', import.meta.url));

describe('conformance vectors', () => {
  it('conformance/vectors.json is the output of the vectors source', () => {
    const built = vectorsJson();
    if (process.env.IPCBOR_WRITE_VECTORS === '1') writeFileSync(file, built);
    assert.equal(readFileSync(file, 'utf8'), built, 'run with IPCBOR_WRITE_VECTORS=1 to rewrite conformance/vectors.json');
  });

  it('has unique case names, hex sends, and one action per step', () => {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Vectors;
    assert.equal(v.format, 1);
    const names = new Set<string>();
    for (const c of v.cases) {
      assert.match(c.name, /^(base|hello|ext|broken)\.[a-z0-9^.-]+$/);
      assert.ok(!names.has(c.name), c.name);
      names.add(c.name);
      for (const s of c.steps) {
        const actions = ['send', 'response', 'frame', 'frames', 'close'].filter((k) => k in s);
        assert.equal(actions.length, 1, `${c.name}: ${JSON.stringify(s).slice(0, 80)}`);
        if (s.send !== undefined) hexToBytes(s.send);
      }
    }
  });

  it('matches patterns as README describes', () => {
    assert.equal(mismatch({ $has: { a: 1 } }, { a: 1, b: 2 }), undefined);
    assert.ok(mismatch({ a: 1 }, { a: 1, b: 2 }));
    assert.equal(mismatch({ $prefix: [9, 'x'] }, [9, 'x', 0, 'y']), undefined);
    assert.ok(mismatch([9, 'x'], [9, 'x', 0]));
    assert.equal(mismatch({ $min: 1 }, 2n ** 64n - 1n), undefined);
    assert.equal(mismatch(1, 1n), undefined);
    assert.ok(mismatch({ $match: '^a$' }, 'ab'));
    assert.equal(mismatch({ $oneOf: [1, 'one'] }, 'one'), undefined);
    assert.ok(mismatch({ $type: 'uint' }, -1));
  });
});
