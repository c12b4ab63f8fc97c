/**
 * Where the byte budget itself can be turned against the server: frames
 * larger than what a connection may hold, and partial frames that the
 * server stops reading (so their frame timer stops too). In-process: these
 * are about behaviour, not memory.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { connect, IpcborError, serve } from '../../src/index.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { KiB, MiB, baseFrame, sleep } from './harness.js';

const sockets: Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
});

/** How `p` settled within `ms`: 'ok', an error code, or 'pending'. */
async function outcome(p: Promise<unknown>, ms: number): Promise<string> {
  return Promise.race([
    p.then(
      () => 'ok',
      (err: unknown) => (err instanceof IpcborError ? err.code : String(err)),
    ),
    sleep(ms).then(() => 'pending'),
  ]);
}

describe('the budget against frames it cannot hold', () => {
  it(
    'a call larger than maxConnectionBytes (but within maxFrameBytes) is answered or refused, not left hanging',
    async () => {
      const server = await serve({ echo: (p: unknown) => p }, `unix:${tempSocket()}`, { maxConnectionBytes: 1 * MiB, frameTimeout: 500 });
      const client = await connect(server.addresses[0]!);
      const got = await outcome(client.call('echo', new Uint8Array(2 * MiB)), 2000);
      client.destroy();
      server.destroy();
      assert.notEqual(got, 'pending', 'the call settled (answered, or refused with an error)');
    },
  );

  it(
    'connections that hold partial frames past their share are still closed by frameTimeout, and a legitimate 512 KiB call is served',
    async () => {
      const server = await serve({ echo: (p: unknown) => p }, `unix:${tempSocket()}`, { maxConnectionBytes: 1 * MiB, maxServerBytes: 4 * MiB, frameTimeout: 500 });
      const address = server.addresses[0]!;
      const header = baseFrame('echo', new Uint8Array(0));
      header.writeUInt32BE(4 * MiB, header.length - 4);
      const chunk = Buffer.alloc(2 * MiB);
      const closed: boolean[] = [];
      for (let i = 0; i < 40; i++) {
        const s = await rawConnect(address);
        sockets.push(s);
        s.on('error', () => {});
        closed[i] = false;
        s.on('close', () => (closed[i] = true));
        s.write(header);
        s.write(chunk);
      }
      // The legitimate call comes well after the hogs: its frame's time is
      // its own, while theirs runs out first and frees the budget.
      await new Promise((r) => setTimeout(r, 250));
      const client = await connect(address);
      const got = await outcome(client.call('echo', new Uint8Array(512 * KiB)), 2000);
      // The slow-loris connections go when their frameTimeout (500 ms from
      // their first byte) runs out: wait for that, a little longer at most.
      const deadline = Date.now() + 3000;
      while (closed.some((c) => !c) && Date.now() < deadline) await sleep(20);
      const stillOpen = closed.filter((c) => !c).length;
      client.destroy();
      server.destroy();
      assert.equal(got, 'ok', 'the legitimate call was answered');
      assert.equal(stillOpen, 0, 'every slow-loris connection was closed by frameTimeout');
    },
  );
});
