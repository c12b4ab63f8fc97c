/**
 * Waking those that wait for the server's budget (src/core/peer/budget.ts),
 * and how many stream items the write turns let be made in one turn of the
 * event loop (src/core/peer/turns.ts).
 *
 * Waking:
 * what one wake costs must not grow with the number of connections, or a
 * peer that makes the server go over and under a threshold, or that opens
 * and closes connections, makes the server re-check every waiting
 * connection each time (a mass disconnect of N waiting connections was N²
 * re-checks: about 500,000 for 1,000 connections). Counted, not timed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ITEMS_PER_TURN } from '../../src/core/constants.js';
import { FLOOR, ServerBudget, WAKE_SLICE } from '../../src/core/peer/budget.js';
import { afterIo, clockFor, WriteTurns } from '../../src/core/peer/turns.js';

const MiB = 1024 * 1024;
const nextTurn = () => new Promise<void>((r) => setImmediate(r));
const microtasks = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** `n` members, each with a waiter that waits again whenever it is called back (it never gets room), as a connection over its share does. */
function waiting(budget: ServerBudget, n: number): { calls: number[]; forget(i: number): void } {
  const calls = Array<number>(n).fill(0);
  const waiters = calls.map((_, i) => {
    const f = () => {
      calls[i]!++;
      budget.waitUnder(f);
    };
    return f;
  });
  for (const f of waiters) {
    budget.join();
    budget.waitUnder(f);
  }
  return { calls, forget: (i) => budget.forget(waiters[i]!) };
}

describe('waking the server budget’s waiters', () => {
  it('a mass disconnect of 1,000 waiting connections costs re-checks in proportion to them, not to their square', async () => {
    const n = 1000;
    const budget = new ServerBudget(8 * MiB);
    const w = waiting(budget, n);
    // Over half the bound, within it: fair shares apply, and every waiter is over its own.
    budget.add(6 * MiB);
    for (let i = 0; i < n; i++) {
      // Each connection closes in a callback of its own, as sockets do.
      w.forget(i);
      budget.leave();
      await nextTurn();
    }
    const total = w.calls.reduce((a, b) => a + b, 0);
    assert.ok(total <= 2 * n, `${total} re-checks for ${n} connections leaving`);
    console.log(`# ${total} re-checks for ${n} connections leaving`);
  });

  it('leaving connections still wake the others once fair shares grew past FLOOR and by an eighth', async () => {
    // half / members > FLOOR from the start: 32 MiB / 8 = 4 MiB.
    const budget = new ServerBudget(64 * MiB);
    const w = waiting(budget, 8);
    budget.add(40 * MiB);
    assert.ok(32 * MiB / 8 > FLOOR);
    // With eight members or fewer, every leave grows the shares by an eighth at least.
    const seen: number[] = [];
    for (let i = 7; i > 0; i--) {
      w.forget(i);
      budget.leave();
      await microtasks();
      seen.push(w.calls[0]!);
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
  });

  it('a wake calls back at most WAKE_SLICE waiters per turn of the event loop, the longest waiting first, and every one in the end', async () => {
    const n = 3 * WAKE_SLICE + 5;
    const budget = new ServerBudget(8 * MiB);
    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      budget.join();
      budget.waitUnder(() => order.push(i));
    }
    budget.add(5 * MiB);
    // Under half: everyone may look again.
    budget.remove(2 * MiB);
    await microtasks();
    assert.equal(order.length, WAKE_SLICE);
    const perTurn = [order.length];
    while (order.length < n) {
      const before = order.length;
      await nextTurn();
      perTurn.push(order.length - before);
      assert.ok(perTurn.length < 20, 'every waiter is called back');
    }
    assert.ok(Math.max(...perTurn) <= WAKE_SLICE, `per turn: ${perTurn.join(', ')}`);
    assert.deepEqual(order, Array.from({ length: n }, (_, i) => i));
  });

  it('a wake stops once the server is over its bound again; those not called back keep their place for the next', async () => {
    const budget = new ServerBudget(8 * MiB);
    const order: number[] = [];
    for (let i = 0; i < 10; i++) {
      budget.join();
      // Each one called back takes in 3 MiB (it reads again).
      budget.waitUnder(() => {
        order.push(i);
        budget.add(3 * MiB);
      });
    }
    budget.add(9 * MiB);
    budget.remove(9 * MiB);
    await microtasks();
    await nextTurn();
    // 0, 3, 6, 9 MiB: the fourth one put it over 8 MiB.
    assert.deepEqual(order, [0, 1, 2]);
    budget.remove(9 * MiB);
    await microtasks();
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  });

  it('the write turns wait on the unsent bytes with one callback, however many streams are waiting', async () => {
    const budget = new ServerBudget(8 * MiB);
    let woken = 0;
    budget.whenSent(() => woken++);
    budget.addOut(6 * MiB);
    budget.addOut(-1 * MiB);
    await microtasks();
    assert.equal(woken, 0, 'still over half');
    budget.addOut(-1 * MiB);
    await microtasks();
    assert.equal(woken, 1);
    assert.equal(budget.mayMake, true);
  });
});

describe('write turns in one turn of the event loop', () => {
  /** `n` takers that each write `bytes` when given the turn, and give it back at once. */
  function rig(n: number, bytes: number, turnBytes: number) {
    const gate = { mayMake: true, written: 0, turnBytes, whenSent: () => {} };
    const turns = new WriteTurns(afterIo, gate);
    const clock = clockFor(afterIo);
    const perTurn = new Map<number, number>();
    let left = n;
    const taker = {
      get mayTakeTurn() {
        return left > 0;
      },
      takeTurn(turn: number) {
        left--;
        perTurn.set(clock.turn, (perTurn.get(clock.turn) ?? 0) + 1);
        gate.written += bytes;
        turns.end(turn);
        if (left > 0) turns.ask(taker);
      },
    };
    turns.ask(taker);
    return { perTurn, done: () => left === 0 };
  }

  it('stop once the bytes written in it pass the gate’s turnBytes (items that leave at once still wait for I/O)', async () => {
    const r = rig(10, 60, 100);
    for (let i = 0; i < 20 && !r.done(); i++) await nextTurn();
    assert.ok(r.done());
    // 0 and 60 bytes written before each of the first two; 120 before a third.
    assert.deepEqual([...r.perTurn.values()], [2, 2, 2, 2, 2]);
  });

  it(`give at most ITEMS_PER_TURN (${ITEMS_PER_TURN}) turns in it, whatever the bytes`, async () => {
    const r = rig(3 * ITEMS_PER_TURN, 0, 100);
    for (let i = 0; i < 20 && !r.done(); i++) await nextTurn();
    assert.ok(r.done());
    assert.deepEqual([...r.perTurn.values()], [ITEMS_PER_TURN, ITEMS_PER_TURN, ITEMS_PER_TURN]);
  });
});
