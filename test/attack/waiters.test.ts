/**
 * The server at its default maxConnections (10,000), every connection
 * with a stream waiting for the server's write turns while one peer that
 * reads nothing keeps the unsent bytes over half the budget; then they all
 * leave at once. What waking those that wait costs must not grow with
 * their number (it was every waiting stream re-checked for each connection
 * leaving: some 50 million re-checks here, minutes of a busy server), and
 * a fresh client is served throughout and after.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { cbor, connect, type Client } from '../../src/index.js';
import { DEFAULT_MAX_CONNECTIONS } from '../../src/core/constants.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { extendedHeader, MiB, rawHello, sleep, startServer, type ChildServer } from './harness.js';
import type { Stats } from './matrix-shared.js';

const children: ChildServer[] = [];
const sockets: Socket[] = [];
const clients: Client[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const c of clients) c.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

/** A stream call on a raw socket: [CALL, id, 'stream'] with its params. */
function streamCall(id: number, params: { n: number; size: number }): Buffer {
  const body = Buffer.from(cbor.encode(params));
  return Buffer.concat([extendedHeader([1, id, 'stream'], body.length), body]);
}

/** A raw extended-protocol peer that has asked for a stream and reads nothing. */
async function waiter(address: string, params: { n: number; size: number }): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const s = await rawConnect(address);
      sockets.push(s);
      s.on('error', () => {});
      await rawHello(s);
      s.write(streamCall(1, params));
      return;
    } catch (err) {
      // The listen backlog was full: the server is busy accepting.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || i >= 200) throw err;
      await sleep(20);
    }
  }
}

describe('attack: every connection waiting for the write turns', () => {
  it(
    `${DEFAULT_MAX_CONNECTIONS.toLocaleString('en')} connections with a stream each, waiting while one peer reads nothing, all leave: bounded re-checks, a fresh client served`,
    { timeout: 110_000 },
    async () => {
      const child = await startServer({
        address: `unix:${tempSocket()}`,
        control: `unix:${tempSocket('ctl.sock')}`,
        // Half the budget is 1 MiB: one 1.5 MiB item unread closes the turns.
        options: { maxServerBytes: 2 * MiB, frameTimeout: 120_000 },
      });
      children.push(child);
      const ctl = await connect(child.control!);
      clients.push(ctl);
      const stats = () => ctl.call<Stats>('stats');

      // The hog: one item of 1.5 MiB, never read.
      await waiter(child.address, { n: 1e9, size: 1.5 * MiB });
      for (let t = 0; (await stats()).held < 1 * MiB; t++) {
        assert.ok(t < 500, 'the hog’s item is written');
        await sleep(20);
      }
      // Everyone else (a fresh client below takes the last place) asks for a small stream, and waits.
      const n = DEFAULT_MAX_CONNECTIONS - 2;
      for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => waiter(child.address, { n: 3, size: 16 })));
      for (let t = 0; (await stats()).sockets < n + 1; t++) {
        assert.ok(t < 500, 'every connection is in');
        await sleep(20);
      }
      await ctl.call('reset');

      // A call needs no turn: a fresh client is answered while they all wait.
      const fresh = await connect(child.address);
      clients.push(fresh);
      assert.equal(await fresh.call('version'), '1.0.0');
      fresh.destroy();

      // All leave at once.
      for (const s of sockets) s.destroy();
      let last = await stats();
      for (let t = 0; last.sockets !== 0 || last.held !== 0; t++) {
        assert.ok(t < 1500, `the server lets them go (${last.sockets} sockets, ${last.held} bytes held)`);
        await sleep(20);
        last = await stats();
      }
      // Streams wait at the turns' gate, not each in the budget's waiters.
      assert.ok(last.rechecks <= n, `${last.rechecks} re-checks for ${n} connections leaving`);
      console.log(`# ${n} connections waited and left: ${last.rechecks} re-checks`);

      // And the turns are open again: a new stream runs.
      const after = await connect(child.address);
      clients.push(after);
      const got: number[] = [];
      for await (const item of await after.call<AsyncIterable<Uint8Array>>('stream', { n: 3, size: 16 })) got.push(item.length);
      assert.deepEqual(got, [16, 16, 16]);
      assert.ok(child.alive(), 'the server lives');
    },
  );
});
