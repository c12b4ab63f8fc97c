/**
 * One connection's burst of small frames against everyone else: the
 * server handles every frame of a read at once, so a burst of cheap
 * frames (a few hundred KB) holds its event loop for as long as they take.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended } from '../../src/core/frame/encoder.js';
import { tempSocket } from '../helpers.js';
import { RawExtended } from '../extended-helpers.js';
import { Probe, startServer, until, type ChildServer } from './harness.js';

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

/**
 * Longest a burst may hold the server's event loop beyond what the machine
 * itself does (ms). Without the per-turn frame limit a burst held a quiet
 * server for 550-650 ms; with it, 40-300 ms on a loaded 2-core machine.
 */
const MAX_BLOCK_MS = 400;

describe('attack: a burst of small frames on one connection', () => {
  for (const method of ['version', '$ipcbor.subscribe'] as const) {
    it(
      `10,000 pipelined ${method} calls (about 400 KB) do not block the server for more than ${MAX_BLOCK_MS} ms`,
      async () => {
        const child = await startServer({ address: `unix:${tempSocket()}`, options: { maxSubscriptions: 100 } });
        children.push(child);
        const probe = await Probe.open(child.address);
        const raw = await RawExtended.open(child.address);
        sockets.push(raw.socket);
        const COUNT = 10_000;
        const parts: Uint8Array[] = [];
        for (let i = 1; i <= COUNT; i++) parts.push(...encodeExtended(cbor.encode([1, i, method]), cbor.encode({ event: `event-${i}` })));
        const frames = Buffer.concat(parts);
        // What this machine does with no burst at all (2 shared cores: under
        // load the baseline is not zero): the burst may add at most MAX_BLOCK_MS.
        probe.start();
        await new Promise((r) => setTimeout(r, 500));
        const base = await probe.stop();
        probe.start();
        raw.socket.write(frames);
        await until(() => raw.frames.length >= COUNT, 'an answer to every call', 4000);
        const stats = await probe.stop();
        console.log(`# attack {"attack":"burst of ${COUNT} ${method}","bytes":${frames.length},"probeMaxMs":${Math.round(stats.maxLatency)},"serverMaxLagMs":${Math.round(stats.maxLag)}}`);
        probe.close();
        await child.kill();
        assert.ok(stats.maxLag < base.maxLag + MAX_BLOCK_MS, `the server's event loop was blocked for ${Math.round(stats.maxLag)} ms (${Math.round(base.maxLag)} ms without the burst)`);
        assert.ok(stats.maxLatency < base.maxLatency + MAX_BLOCK_MS, `the probe waited ${Math.round(stats.maxLatency)} ms (${Math.round(base.maxLatency)} ms without the burst)`);
      },
    );
  }
});
