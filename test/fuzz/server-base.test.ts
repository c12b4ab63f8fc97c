/**
 * Fuzzing the server, base framing and the hello: random bytes, base
 * requests with mutated bytes and length fields, and hello offers of any
 * shape, each on a fresh connection to a live server in a child process
 * (small budgets: test/fuzz/fuzz.ts LIMITS). After every case the server
 * still answers another client, its answers kept the wire contract, and
 * its memory (every few cases) is within the resource model's bound.
 */
import { after, before, describe, it } from 'node:test';
import { fc, helloFrame, wire, joinWire, mutate, mutationsArb, runCase, runs, baseFrameArb, split, splitsArb, startTarget, type Target } from './fuzz.js';
import { valueArb } from '../unit/codec-arbitraries.js';
import { MiB } from '../attack/harness.js';

let target: Target;
before(async () => {
  target = await startTarget();
});
after(() => target.close());

describe('fuzz: the server, base framing', () => {
  it('random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), splitsArb, fc.boolean(), async (bytes, splits, end) => {
        await runCase(target, split(bytes, splits), { end });
      }),
      runs(60),
    );
    await target.finish('base: random bytes');
  });

  it('base-framing requests, mutated (bit flips, truncations, length fields, inserted and repeated bytes)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(baseFrameArb, { minLength: 1, maxLength: 6 }), mutationsArb, splitsArb, fc.boolean(), async (frames, mutations, splits, end) => {
        await runCase(target, split(mutate(joinWire(frames), mutations), splits), { end });
      }),
      runs(120),
    );
    await target.finish('base: mutated requests');
  });

  it('hello offers of any shape, then frames of either framing', async () => {
    const offerArb = fc.oneof(
      fc.record(
        {
          version: fc.oneof(fc.constantFrom<unknown>(0, 1, 2, 2 ** 32, -1, 1.5, 2n ** 64n - 1n, 'x', null), fc.nat()),
          maxFrameBytes: fc.oneof(fc.constantFrom<unknown>(0, 1, 16, 1024 * 1024, 2 ** 32, 2n ** 64n - 1n, -1, 'x'), fc.nat()),
          window: fc.oneof(fc.constantFrom<unknown>(0, 1, 64, 2 ** 32, -1, 'x'), fc.nat()),
          extra: valueArb,
        },
        { requiredKeys: [] },
      ),
      valueArb,
    );
    await fc.assert(
      fc.asyncProperty(offerArb, fc.array(baseFrameArb, { maxLength: 3 }), mutationsArb, async (offer, frames, mutations) => {
        // The offer's own bytes may be mutated too: whatever the hello is, the server copes.
        // What the server may send back is bounded by the maxFrameBytes offered, when the offer went out intact.
        const offered = (offer as { maxFrameBytes?: unknown } | null)?.maxFrameBytes;
        const announcedMaxFrame = mutations.length === 0 && typeof offered === 'number' && Number.isInteger(offered) && offered > 0 ? Math.min(offered, 2 ** 32 - 1) : 64 * MiB;
        await runCase(target, [mutate(joinWire([wire(helloFrame(offer), [0, 17]), ...frames]), mutations)], { helloInBytes: true, announcedMaxFrame });
      }),
      runs(60),
    );
    await target.finish('base: hello offers');
  });
});
