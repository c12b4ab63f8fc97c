/**
 * The table of calls in flight by id (src/core/peer/id-table.ts), checked
 * against a Map: any sequence of sets, deletes and lookups, with ids that
 * collide, wrap around 2^32 and repeat, gives the same answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IdTable } from '../../src/core/peer/id-table.js';

type Op = { op: 'set' | 'delete' | 'get' | 'clear'; id: number };

/** Do `op` on both the table and the Map model, checking the table's answers against the model's. */
function step(table: IdTable<{ n: number }>, model: Map<number, { n: number }>, { op, id }: Op, n: number): void {
  if (op === 'set') {
    const v = { n };
    table.set(id, v);
    model.set(id, v);
  } else if (op === 'delete') {
    assert.equal(table.delete(id), model.delete(id));
  } else if (op === 'clear') {
    table.clear();
    model.clear();
  }
  assert.equal(table.get(id), model.get(id));
  assert.equal(table.size, model.size);
}

const ids = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0xffffffc0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }));
const ops = fc.array(fc.record({ op: fc.constantFrom<Op['op']>('set', 'set', 'delete', 'get'), id: ids }), { maxLength: 600 });

describe('IdTable', () => {
  it('answers as a Map does, through growth, shrinking and deletes inside runs', () => {
    fc.assert(
      fc.property(ops, (list) => {
        const table = new IdTable<{ n: number }>();
        const model = new Map<number, { n: number }>();
        list.forEach((o, n) => step(table, model, o, n));
        for (const [id, v] of model) assert.equal(table.get(id), v);
        assert.deepEqual(new Set(table.valuesList()), new Set(model.values()));
      }),
      { numRuns: 300 },
    );
  });

  it('answers as a Map does going in and out of one entry kept alone, with clears', () => {
    const few = fc.array(fc.record({ op: fc.constantFrom<Op['op']>('set', 'set', 'delete', 'get', 'clear'), id: fc.integer({ min: 0, max: 3 }) }), { maxLength: 60 });
    fc.assert(
      fc.property(few, (list) => {
        const table = new IdTable<{ n: number }>();
        const model = new Map<number, { n: number }>();
        list.forEach((o, n) => {
          step(table, model, o, n);
          for (let k = 0; k <= 3; k++) assert.equal(table.get(k), model.get(k));
          assert.deepEqual(new Set(table.valuesList()), new Set(model.values()));
        });
      }),
      { numRuns: 500 },
    );
  });

  it('one entry at a time uses no arrays', () => {
    const table = new IdTable<number>();
    for (let id = 1; id <= 100; id++) {
      table.set(id, id);
      assert.equal(table.get(id), id);
      assert.equal(table.delete(id), true);
    }
    assert.equal((table as unknown as { values: unknown[] }).values.length, 0);
    table.set(1, 1);
    table.set(2, 2);
    assert.ok((table as unknown as { values: unknown[] }).values.length > 0, 'a second entry moves both into the arrays');
    assert.equal(table.get(1), 1);
    assert.equal(table.get(2), 2);
  });

  it('holds thousands at once and gives the room back when they are gone', () => {
    const table = new IdTable<number>();
    for (let id = 1; id <= 5000; id++) table.set(id, id);
    assert.equal(table.size, 5000);
    for (let id = 1; id <= 5000; id += 2) assert.equal(table.delete(id), true);
    for (let id = 1; id <= 5000; id++) assert.equal(table.get(id), id % 2 === 0 ? id : undefined);
    for (let id = 2; id <= 5000; id += 2) table.delete(id);
    assert.equal(table.size, 0);
    assert.ok((table as unknown as { values: unknown[] }).values.length <= 64, 'the table shrank');
    table.set(7, 7);
    assert.equal(table.get(7), 7);
  });
});
