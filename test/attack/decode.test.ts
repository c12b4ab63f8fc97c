/**
 * A decode bomb: a 4 MiB payload that is an array of 4M empty maps (five
 * bytes of array header, then 0xa0 4M times). Decoded, it is hundreds of
 * MB of objects and seconds of work. A method that takes no params must
 * never decode it; one that does must refuse it or stay bounded, without
 * blocking everyone else.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';
import { RawExtended } from '../extended-helpers.js';
import { assertBounded, extendedHeader, MiB, Probe, baseFrame, startServer, unbounded, type ChildServer } from './harness.js';

const MAPS = 4 * MiB;
const bomb = Buffer.alloc(5 + MAPS, 0xa0);
bomb.set([0x9a, 0x00, 0x40, 0x00, 0x00]);
/** What 4M decoded empty objects and their array take on V8 (measured: about 64 bytes each). */
const DECODED = MAPS * 64;
/** Budgets that let the bomb in: what is measured is the decoding, not the back-pressure. */
const LIMITS = { maxConnectionBytes: 5 * MiB, maxServerBytes: 16 * MiB };

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

async function setup() {
  const child = await startServer({ address: `unix:${tempSocket()}`, options: unbounded(LIMITS) });
  children.push(child);
  const probe = await Probe.open(child.address);
  return { child, probe };
}

describe('attack: decode bomb', () => {
  it('sent to version (takes no params) over the extended protocol: answered at once, never decoded', async () => {
    const { child, probe } = await setup();
    probe.start();
    const raw = await RawExtended.open(child.address);
    sockets.push(raw.socket);
    const t0 = performance.now();
    raw.socket.write(extendedHeader([1, 1, 'version'], bomb.length));
    raw.socket.write(bomb);
    const answer = await raw.next(3000);
    const ms = performance.now() - t0;
    assert.deepEqual(answer.head, [4, 1], 'a RESULT for the call');
    assert.ok(ms < 1000, `answered in ${Math.round(ms)} ms`);
    const stats = await probe.stop();
    console.log(`# attack {"attack":"decode bomb to version (extended)","answerMs":${Math.round(ms)}}`);
    assertBounded('decode bomb to version (extended)', stats, LIMITS.maxConnectionBytes, DECODED, child);
    probe.close();
    await child.kill();
  });

  it('sent to version over the base framing: answered at once, never decoded', async () => {
    const { child, probe } = await setup();
    probe.start();
    const s = await rawConnect(child.address);
    sockets.push(s);
    const r = new RawReader(s);
    const t0 = performance.now();
    s.write(baseFrame('version', bomb));
    const answer = await r.response();
    const ms = performance.now() - t0;
    assert.equal(answer.ret, 0);
    assert.ok(ms < 1000, `answered in ${Math.round(ms)} ms`);
    const stats = await probe.stop();
    console.log(`# attack {"attack":"decode bomb to version (base)","answerMs":${Math.round(ms)}}`);
    assertBounded('decode bomb to version (base)', stats, LIMITS.maxConnectionBytes, DECODED, child);
    probe.close();
    await child.kill();
  });

  it(
    'sent to echo (decodes its params): refused or bounded, and the server is not blocked',
    async () => {
      const { child, probe } = await setup();
      probe.start();
      const raw = await RawExtended.open(child.address);
      sockets.push(raw.socket);
      raw.socket.write(extendedHeader([1, 1, 'echo'], bomb.length));
      raw.socket.write(bomb);
      // Refused (an ERROR), or answered: either is fine, if bounded and prompt.
      let answer: { head: unknown[] } | undefined;
      try {
        answer = await raw.next(4000);
      } catch {
        answer = undefined;
      }
      const stats = await probe.stop();
      console.log(`# attack {"attack":"decode bomb to echo","answer":${JSON.stringify(answer?.head ?? null)}}`);
      assertBounded('decode bomb to echo', stats, LIMITS.maxConnectionBytes, DECODED, child);
      assert.ok(answer !== undefined, 'the call was answered (a RESULT or an ERROR)');
      probe.close();
      await child.kill();
    },
  );
});
