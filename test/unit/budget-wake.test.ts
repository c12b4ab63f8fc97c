/**
 * Waking those that wait for the server's budget (src/core/peer/budget.ts),
 * and how many stream items the write turns let be made in one turn of the
 * event loop (src/core/peer/turns.ts).
 *
 * Waking: what one wake costs a turn of the event loop must not grow with
 * the number of connections, or a peer that makes the server go over and
 * under a threshold, or that opens and closes connections, makes the
 * server re-check every waiting connection each time (a mass disconnect
 * of N waiting connections was N² re-checks: about 500,000 for 1,000
 * connections). And no waiter that could go may be left waiting. Counted,
 * not timed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ITEMS_PER_TURN } from '../../src/core/constants.js';
import { ServerBudget, WAKE_SLICE } from '../../src/core/peer/budget.js';
import { afterIo, clockFor, WriteTurns } from '../../src/core/peer/turns.js';

const MiB = 1024 * 1024;
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

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
  it('1,000 waiting connections leaving, 50 in each turn of the event loop, cost at most WAKE_SLICE re-checks per turn', async () => {
    const n = 1000;
    const budget = new ServerBudget(8 * MiB);
    const w = waiting(budget, n);
    // Over half the bound, within it: fair shares apply, and every waiter is over its own.
    budget.add(6 * MiB);
    const perTurn: number[] = [];
    let seen = 0;
    for (let i = 0; i < n; i += 50) {
      // Sockets that close in one poll of the event loop, each in a callback of its own.
      for (let k = i; k < i + 50; k++) {
        w.forget(k);
        budget.leave();
      }
      await nextTurn();
      const total = w.calls.reduce((a, b) => a + b, 0);
      perTurn.push(total - seen);
      seen = total;
    }
    assert.ok(Math.max(...perTurn) <= WAKE_SLICE, `re-checks per turn: ${perTurn.join(', ')}`);
    // Every leave used to re-check every waiter: 9,500 here (each turn all of them), 499,500 with one leave per turn.
    console.log(`# ${seen} re-checks for ${n} connections leaving in ${perTurn.length} turns`);
  });

  it('a waiter whose fair share grew enough as connections left is woken', async () => {
    const budget = new ServerBudget(8 * MiB);
    for (let i = 0; i < 40; i++) budget.join();
    // Over half (4 MiB), within the bound: a share is 4 MiB over the members.
    budget.add(5 * MiB);
    const own = 120 * 1024;
    let woken = false;
    const f = () => (budget.allows(own) ? (woken = true) : budget.waitUnder(f));
    f();
    assert.equal(woken, false);
    // 34 members: a share is 120.5 KiB.
    while (budget.members > 34) {
      budget.leave();
      await nextTurn();
    }
    assert.equal(woken, true);
  });

  it('a connection in the middle of a frame is woken once the server would be within its bound without that frame, by releases that cross no threshold', async () => {
    const budget = new ServerBudget(8 * MiB);
    // Many members: a share is under FLOOR, so leaving connections wake nobody for their shares.
    for (let i = 0; i < 200; i++) budget.join();
    const frameIn = 3 * MiB;
    // Its frame, and three others: 12 MiB, over the bound.
    for (const n of [frameIn, 2 * MiB, 4.5 * MiB, 2.5 * MiB]) budget.add(n);
    let woken = 0;
    // As Flow.update waits with a frame half in.
    const f = () => {
      if (budget.allows(frameIn) || budget.withinWithout(frameIn)) woken++;
      else {
        budget.waitUnder(f);
        budget.waitWithin(f, frameIn);
      }
    };
    f();
    budget.remove(0.5 * MiB);
    await nextTurn();
    assert.equal(woken, 0, '11.5 MiB held, 8.5 MiB without the frame: not yet');
    // Another connection leaves: 9.5 MiB held, still over the bound, but 6.5 MiB without the frame.
    budget.remove(2 * MiB);
    budget.leave();
    await nextTurn();
    assert.equal(woken, 1);
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
    const perTurn: number[] = [];
    while (order.length < n) {
      const before = order.length;
      await nextTurn();
      perTurn.push(order.length - before);
      assert.ok(perTurn.length < 20, 'every waiter is called back');
    }
    assert.ok(Math.max(...perTurn) <= WAKE_SLICE, `per turn: ${perTurn.join(', ')}`);
    assert.deepEqual(order, Array.from({ length: n }, (_, i) => i));
  });

  it('wakes from inside the callbacks (a woken connection crosses a threshold again) still cost at most WAKE_SLICE per turn', async () => {
    const n = 1000;
    const budget = new ServerBudget(8 * MiB);
    let calls = 0;
    let done = false;
    for (let i = 0; i < n; i++) {
      budget.join();
      const f = () => {
        calls++;
        // It reads a call in and lets it go: over half and back under, a wake each time.
        budget.add(1 * MiB);
        budget.remove(1 * MiB);
        if (!done) budget.waitUnder(f);
      };
      budget.waitUnder(f);
    }
    budget.add(4.5 * MiB);
    budget.remove(1 * MiB);
    const perTurn: number[] = [];
    for (let t = 0; t < 8; t++) {
      const before = calls;
      await nextTurn();
      perTurn.push(calls - before);
    }
    // The wakes never end by themselves: the waiters stop waiting.
    done = true;
    assert.deepEqual(perTurn, Array(8).fill(WAKE_SLICE));
  });

  it('the write turns wait on the unsent bytes with one callback, however many streams are waiting', async () => {
    const budget = new ServerBudget(8 * MiB);
    let woken = 0;
    budget.whenSent(() => woken++);
    budget.addOut(6 * MiB);
    budget.addOut(-1 * MiB);
    await nextTurn();
    assert.equal(woken, 0, 'still over half');
    budget.addOut(-1 * MiB);
    await nextTurn();
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
