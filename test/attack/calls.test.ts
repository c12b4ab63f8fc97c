/**
 * Attacks with calls: clients that pipeline calls and never read their
 * answers. The server must stop reading the attackers, stay within its
 * byte budget, and keep answering everyone else. (Calls and notifications
 * that a handler holds, at every size and on 1 or 1,000 connections, are
 * in the attack matrix: matrix.ts.)
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { assertBounded, unbounded, extendedHeader, KiB, MiB, Probe, rawHello, baseFrame, settled, sleep, startServer, type ChildServer } from './harness.js';

const LIMITS = { maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB };

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

async function setup(options: object = LIMITS) {
  const child = await startServer({ address: `unix:${tempSocket()}`, options: unbounded(options) });
  children.push(child);
  const probe = await Probe.open(child.address);
  return { child, probe };
}

async function attacker(address: string, extended: boolean): Promise<Socket> {
  const s = await rawConnect(address);
  sockets.push(s);
  s.on('error', () => {});
  if (extended) await rawHello(s);
  else s.pause();
  return s;
}

/** Write frames; returns how many bytes the server has taken from the socket so far. */
function send(s: Socket, frames: Iterable<Buffer>): () => number {
  let total = 0;
  s.cork();
  for (const f of frames) {
    total += f.length;
    s.write(f);
  }
  s.uncork();
  return () => total - s.writableLength;
}

function* repeat<T>(n: number, f: (i: number) => Iterable<T>): Iterable<T> {
  for (let i = 0; i < n; i++) yield* f(i);
}

describe('attack: pipelined calls whose answers are never read', () => {
  it('20 raw sockets each write 4,000 echo calls of 4 KiB and never read', async () => {
    const { child, probe } = await setup();
    probe.start();
    const CONNS = 20;
    const CALLS = 4000;
    const payload = Buffer.from(cbor.encode(new Uint8Array(4 * KiB)));
    const base = baseFrame('echo', payload);
    const takers: (() => number)[] = [];
    for (let c = 0; c < CONNS; c++) {
      const extended = c % 2 === 0;
      const s = await attacker(child.address, extended);
      takers.push(send(s, extended ? repeat(CALLS, (i) => [extendedHeader([1, i + 1, 'echo'], payload.length), payload]) : repeat(CALLS, () => [base])));
    }
    const volume = CONNS * CALLS * payload.length;
    const taken = () => takers.reduce((sum, t) => sum + t(), 0);
    assert.ok(await settled(taken), 'the server stopped reading the attackers');
    await sleep(300);
    const stats = await probe.stop();
    assert.ok(taken() < volume / 10, `the server took ${taken()} of ${volume} bytes`);
    assertBounded('pipelined unread answers', stats, LIMITS.maxServerBytes, volume, child);
    probe.close();
    await child.kill();
  });
});
