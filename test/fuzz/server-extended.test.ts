/**
 * Fuzzing the server, extended protocol: after a valid hello, sequences of
 * extended frames of every kind (CALL with options and streamed params,
 * NOTIFY, CANCEL, RESULT, ERROR, ITEM, END, CREDIT, EVENT, unknown kinds,
 * malformed heads) with random ids, credits and payloads, then mutated
 * (bit flips, truncations, length fields, inserted and repeated bytes), on
 * a fresh connection each, to a live server in a child process. After
 * every case the server still answers another client, what it sent kept
 * the wire contract (no payload over the maxFrameBytes we announced), and
 * its memory (every few cases) is within the resource model's bound.
 */
import { after, before, describe, it } from 'node:test';
import { extendedFrameArb, fc, joinWire, mutate, mutationsArb, runCase, runs, split, splitsArb, startTarget, type Target } from './fuzz.js';

let target: Target;
before(async () => {
  target = await startTarget();
});
after(() => target.close());

describe('fuzz: the server, extended protocol', () => {
  it('valid frames of every kind, in any order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(extendedFrameArb, { minLength: 1, maxLength: 8 }), splitsArb, async (frames, splits) => {
        await runCase(target, split(joinWire(frames).bytes, splits), { hello: true, quietMs: 25 });
      }),
      runs(120),
    );
    await target.finish('extended: frames');
  });

  it('mutated frames', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(extendedFrameArb, { minLength: 1, maxLength: 8 }), mutationsArb, splitsArb, fc.boolean(), async (frames, mutations, splits, end) => {
        await runCase(target, split(mutate(joinWire(frames), mutations), splits), { hello: true, end });
      }),
      runs(180),
    );
    await target.finish('extended: mutated frames');
  });
});
