/**
 * Attacks with events: a subscriber that never reads while large events
 * pour out, and a connection that subscribes to thousands of names.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { connect, IpcborError } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended } from '../../src/core/frame/encoder.js';
import { tempSocket } from '../helpers.js';
import { RawExtended } from '../extended-helpers.js';
import { assertBounded, KiB, MiB, Probe, startServer, unbounded, until, type ChildServer } from './harness.js';

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

async function setup(options: object, kind: 'handlers' | 'service' = 'handlers') {
  const child = await startServer({ address: `unix:${tempSocket()}`, kind, options: unbounded(options) });
  children.push(child);
  const probe = await Probe.open(child.address);
  return { child, probe };
}

const isCode = (code: string) => (err: unknown) => err instanceof IpcborError && err.code === code;

describe('attack: a subscriber that never reads', () => {
  it('6,000 events of 64 KiB to a paused subscriber, eventQueueBytes 512 KiB: memory bounded, the oldest dropped', async () => {
    const LIMITS = { maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB, eventQueueBytes: 512 * KiB };
    const { child, probe } = await setup(LIMITS);
    const sub = await RawExtended.open(child.address);
    sockets.push(sub.socket);
    sub.send([1, 1, '$ipcbor.subscribe'], { event: 'tick' });
    assert.deepEqual((await sub.next()).head, [4, 1], 'subscribed');
    sub.pause();
    probe.start();
    const trigger = await connect(child.address);
    const ROUNDS = 30;
    const N = 200;
    const SIZE = 64 * KiB;
    for (let i = 0; i < ROUNDS; i++) assert.equal(await trigger.call('fire', { n: N, size: SIZE }), N);
    trigger.destroy();
    const stats = await probe.stop();
    const total = ROUNDS * N;
    assertBounded('unread events', stats, LIMITS.maxConnectionBytes, total * SIZE, child);

    // Now read: what the subscriber gets is the newest events, in order,
    // and every event it missed is counted in the `dropped` of a later one.
    sub.resume();
    const seqs: number[] = [];
    let dropped = 0;
    await until(
      () => {
        while (sub.frames.length > 0) {
          const f = sub.frames.shift()!;
          assert.equal(f.head[0], 9, 'an EVENT');
          dropped += (f.head[2] as number | undefined) ?? 0;
          seqs.push((cbor.decode(f.payload) as { seq: number }).seq);
        }
        return seqs.at(-1) === total - 1;
      },
      'the last event',
      4000,
    );
    console.log(`# attack {"attack":"unread events","fired":${total},"received":${seqs.length},"dropped":${dropped}}`);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'in order');
    assert.ok(dropped > 0 && seqs.length < total / 10, `most events were dropped (${dropped}), few kept (${seqs.length})`);
    assert.equal(seqs.length + dropped, total, 'every event was delivered or counted as dropped');
    probe.close();
    await child.kill();
  });
});

describe('attack: subscriptions', () => {
  it('10,000 subscriptions on one connection with maxSubscriptions 100: the rest refused with IPCBOR_ERR_OVERLOADED', async () => {
    const LIMITS = { maxSubscriptions: 100, maxEventNameBytes: 64 };
    const { child, probe } = await setup(LIMITS);
    const raw = await RawExtended.open(child.address);
    sockets.push(raw.socket);
    const COUNT = 10_000;
    const parts: Uint8Array[] = [];
    for (let i = 1; i <= COUNT; i++) parts.push(...encodeExtended(cbor.encode([1, i, '$ipcbor.subscribe']), cbor.encode({ event: `event-${i}` })));
    const frames = Buffer.concat(parts);
    probe.start();
    const t0 = performance.now();
    raw.socket.write(frames);
    await until(() => raw.frames.length >= COUNT, 'an answer to every subscription', 4000);
    const answeredMs = performance.now() - t0;
    const codes = new Map<string, number>();
    for (const f of raw.frames) {
      const key = f.head[0] === 4 ? 'ok' : String(f.head[2]);
      codes.set(key, (codes.get(key) ?? 0) + 1);
    }
    console.log(`# attack {"attack":"10,000 subscriptions","answeredMs":${Math.round(answeredMs)},"answers":${JSON.stringify(Object.fromEntries(codes))}}`);
    assert.deepEqual(Object.fromEntries(codes), { ok: 100, IPCBOR_ERR_OVERLOADED: COUNT - 100 });

    // A name over maxEventNameBytes is refused, on a connection of its own.
    const client = await connect(child.address);
    await assert.rejects(client.subscribe('x'.repeat(65)).ready, isCode('IPCBOR_ERR_INVALID_PARAMS'));
    await client.subscribe('x'.repeat(64)).ready;
    client.destroy();
    const stats = await probe.stop();
    // The burst holds the server for well over 250 ms (see fairness.test.ts): here it only has to end.
    assertBounded('10,000 subscriptions', stats, 1 * MiB, 0, child, { volume: false, maxLatency: 2000 });
    probe.close();
    await child.kill();
  });

  it('a service that declares its events refuses any other name with IPCBOR_ERR_UNKNOWN_EVENT', async () => {
    const { child, probe } = await setup({}, 'service');
    const client = await connect(child.address);
    await assert.rejects(client.subscribe('nope').ready, isCode('IPCBOR_ERR_UNKNOWN_EVENT'));
    await assert.rejects(client.subscribe('attack.nope').ready, isCode('IPCBOR_ERR_UNKNOWN_EVENT'));
    const got: unknown[] = [];
    const sub = client.subscribe('tick', (p) => got.push(p));
    await sub.ready;
    await client.call('fire', { n: 1, size: 1 });
    await until(() => got.length === 1, 'the declared event');
    client.destroy();
    probe.close();
    assert.ok(child.alive());
    await child.kill();
  });
});
