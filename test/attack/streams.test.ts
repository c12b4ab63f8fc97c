/**
 * Result streams opened cheaply and never read: each call costs the
 * attacker a few bytes, each stream may send a window of items before it
 * needs credit. What the server queues must stay within the connection's
 * budget however many streams are open.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended } from '../../src/core/frame/encoder.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { assertBounded, HELLO, KiB, MiB, Probe, rawHello, sleep, startServer, unbounded, type ChildServer } from './harness.js';

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

const LIMITS = { maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB };
const SIZE = 64 * KiB;

async function attack(streams: number) {
  const child = await startServer({ address: `unix:${tempSocket()}`, options: unbounded(LIMITS) });
  children.push(child);
  const probe = await Probe.open(child.address);
  probe.start();
  const s = await rawConnect(child.address);
  sockets.push(s);
  s.on('error', () => {});
  await rawHello(s);
  const parts: Uint8Array[] = [];
  for (let id = 1; id <= streams; id++) parts.push(...encodeExtended(cbor.encode([1, id, 'stream']), cbor.encode({ n: 1000, size: SIZE })));
  s.write(Buffer.concat(parts));
  // The server writes until the socket backs up and its budget is spent;
  // memory is sampled meanwhile (a window to measure in, not a condition).
  await sleep(1200);
  const stats = await probe.stop();
  const volume = streams * HELLO.window * SIZE;
  assertBounded(`${streams} unread streams`, stats, LIMITS.maxConnectionBytes, volume, child);
  s.destroy();
  probe.close();
  await child.kill();
}

describe('attack: many result streams never read', () => {
  it('200 stream({n: 1000, size: 64 KiB}) calls on one connection, never read: memory bounded, probe served', async () => {
    await attack(200);
  });

  it(
    '1,000 such streams (within maxInflight): still bounded by the connection budget',
    async () => {
      await attack(1000);
    },
  );
});
