/**
 * Attacks on the relay, run in a child process (relay-child.ts) whose
 * memory is sampled through its control server:
 *
 * - a client that never reads the answers it asked for (result streams of
 *   items at every size that matters: below one socket read, above it,
 *   near the connection budget, at the frame limit);
 * - a service that stops reading while a client pumps calls at it, at the
 *   same sizes;
 * - the relay killed mid-call: the client's call fails with a typed error
 *   and the service's handler is aborted; nothing hangs.
 *
 * Each time the relay's heap and buffers stay within a bound set by its
 * limits, and other clients of the relay are still served.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { connect, serve, type CallContext, type Client } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended, encodeResponse } from '../../src/core/frame/encoder.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { deferred, rejectsWith } from '../extended-helpers.js';
import { held, KiB, mb, MiB, rawHello, settled, sleep, spawnNode, startServer, type ChildServer, type Mem } from './harness.js';
import { padLength } from './matrix-shared.js';

const here = dirname(fileURLToPath(import.meta.url));
const RELAY_SCRIPT = join(here, 'relay-child.js');

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

/** The relay's limits in these attacks. */
const LIMITS = { maxFrameBytes: 8 * MiB, maxConnectionBytes: 4 * MiB, maxServerBytes: 32 * MiB };
/**
 * What the relay may hold for one stalled direction: the connection budget,
 * one frame in the decoder and one in the transport, the transport's
 * high-water mark, a read-ahead; with slack for what is not counted (code,
 * JIT, GC timing), as the server's attack bound has.
 */
const BOUND = 2 * LIMITS.maxFrameBytes + 2 * LIMITS.maxConnectionBytes + 24 * MiB;

/** The sizes that matter: below one socket read, above it, near the budget, at the frame limit. */
const SIZES = [
  { name: '1 KiB (below one socket read)', size: 1 * KiB },
  { name: '256 KiB (above one socket read)', size: 256 * KiB },
  { name: 'near the connection budget', size: LIMITS.maxConnectionBytes - 64 * KiB },
  { name: 'at the frame limit', size: LIMITS.maxFrameBytes },
];

/** Start the relay child: listen on loopback TCP, relay to `to`. */
async function relayChild(to: string, options: object = LIMITS) {
  const control = `unix:${tempSocket()}`;
  const proc = spawnNode(RELAY_SCRIPT, [JSON.stringify({ listen: ['tcp:127.0.0.1:0'], to, options, control })], { heapMb: 512 });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    proc.once('exit', (code) => reject(new Error(`the relay exited (${code}) before it listened`)));
  });
  const info = JSON.parse(line) as { address: string; control: string; pid: number };
  const controlClient = await connect(info.control);
  const child: ChildServer = {
    address: info.address,
    control: info.control,
    pid: info.pid,
    proc,
    exited,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    kill: async () => {
      controlClient.destroy();
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
  children.push(child);
  return { ...child, controlClient, mem: () => controlClient.call<Mem>('mem') };
}

/** Samples the relay's memory every 50 ms until stopped; keeps the peak. */
function sampler(mem: () => Promise<Mem>) {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, held(await mem()));
      await sleep(50);
    }
  })();
  return {
    async stop(): Promise<number> {
      running = false;
      await loop;
      peak = Math.max(peak, held(await mem()));
      return peak;
    },
  };
}

/** The relay's baseline memory, a sampler started, and the attacker connected through it with the hello done (its socket paused: it reads nothing). */
async function attacker(relay: { address: string; mem(): Promise<Mem> }) {
  const baseline = held(await relay.mem());
  const watch = sampler(relay.mem);
  const s = await rawConnect(relay.address);
  sockets.push(s);
  s.on('error', () => {});
  await rawHello(s);
  return { baseline, watch, s };
}

describe('attack: the relay, a client that never reads its answers', () => {
  for (const { name, size } of SIZES) {
    it(`result streams of ${name} items, never read: the relay's memory stays bounded, others are served`, async () => {
      const service = await startServer({ address: `unix:${tempSocket()}` });
      children.push(service);
      const relay = await relayChild(service.address);
      const { baseline, watch, s } = await attacker(relay);
      // Enough streams to send far more than the bound, and no read.
      const item = padLength(size);
      const streams = Math.max(1, Math.ceil((4 * BOUND) / (64 * size)));
      for (let id = 1; id <= streams; id++) s.write(Buffer.concat(encodeExtended(cbor.encode([1, id, 'stream']), cbor.encode({ n: 1000, size: item }))));
      // Others are served meanwhile, through the same relay.
      const probe = await connect(relay.address);
      let probeCalls = 0;
      let worst = 0;
      const probing = (async () => {
        for (let i = 0; i < 20; i++) {
          const t0 = performance.now();
          assert.equal(await probe.call('version'), '1.0.0');
          worst = Math.max(worst, performance.now() - t0);
          probeCalls++;
        }
      })();
      // Until the relay's memory stops changing: it took what it will take.
      await settled(async () => Math.round(held(await relay.mem()) / MiB), 500, 8000);
      await probing;
      const peak = await watch.stop();
      console.log(`# relay attack ${JSON.stringify({ attack: `unread streams, ${name}`, streams, volume: mb(streams * 64 * size), baseline: mb(baseline), peak: mb(peak), bound: mb(baseline + BOUND), probeCalls, probeWorstMs: Math.round(worst) })}`);
      assert.ok(peak <= baseline + BOUND, `the relay holds ${mb(peak - baseline)} over its baseline, within ${mb(BOUND)}`);
      assert.equal(probeCalls, 20);
      assert.ok(relay.alive());
      probe.destroy();
      s.destroy();
      await relay.kill();
      await service.kill();
    });
  }
});

/** A service that answers the hello, then never reads again. */
async function stalledService(): Promise<{ address: string; server: NetServer; connections: () => number }> {
  const path = tempSocket();
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.pause();
      for (const part of encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 16 * MiB, window: 64, server: 'stalled' }))) socket.write(part);
    });
  });
  server.listen(path);
  await once(server, 'listening');
  return { address: `unix:${path}`, server, connections: () => count };
}

describe('attack: the relay, a service that stops reading', () => {
  for (const { name, size } of SIZES) {
    it(`calls of ${name} pumped at a service that reads nothing: the relay's memory stays bounded, it goes on serving`, async () => {
      const service = await stalledService();
      const relay = await relayChild(service.address);
      try {
        const { baseline, watch, s } = await attacker(relay);
        const body = cbor.encode(new Uint8Array(padLength(size)));
        const calls = Math.max(1, Math.ceil((4 * BOUND) / body.length));
        for (let id = 1; id <= calls; id++) s.write(Buffer.concat(encodeExtended(cbor.encode([1, id, 'echo']), body)));
        // Until the relay stops taking the attacker's bytes: what waits in the attacker's socket stops shrinking.
        await settled(() => s.writableLength, 500, 8000);
        assert.ok(s.writableLength > 0, 'the relay stopped reading the attacker');
        // The relay goes on: its control server answers, and a new client is relayed (its hello answered).
        assert.equal(await relay.controlClient.call('version'), 'relay-child');
        const other = await connect(relay.address);
        assert.equal(other.protocol, 'extended');
        other.destroy();
        const peak = await watch.stop();
        console.log(`# relay attack ${JSON.stringify({ attack: `stalled service, ${name}`, calls, volume: mb(calls * body.length), baseline: mb(baseline), peak: mb(peak), bound: mb(baseline + BOUND), unread: mb(s.writableLength) })}`);
        assert.ok(peak <= baseline + BOUND, `the relay holds ${mb(peak - baseline)} over its baseline, within ${mb(BOUND)}`);
        assert.ok(relay.alive());
        s.destroy();
      } finally {
        await relay.kill();
        service.server.close();
      }
    });
  }
});

describe('the relay killed mid-call', () => {
  it('fails the call in flight with a typed error, aborts the handler, and leaves nothing hanging', async () => {
    const started = deferred();
    const aborted = deferred<unknown>();
    const service = await serve(
      {
        hang: (_p: unknown, ctx: CallContext) => {
          started.resolve();
          return new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => (aborted.resolve(ctx.signal.reason), reject(ctx.signal.reason as Error)), { once: true }));
        },
      },
      `unix:${tempSocket()}`,
    );
    const relay = await relayChild(service.addresses[0]!);
    try {
      const client = await connect(relay.address);
      const call = client.call('hang');
      const stream = client.call('hang');
      await started.promise;
      relay.proc.kill('SIGKILL');
      await relay.exited;
      const err = await rejectsWith(call, 'IPCBOR_ERR_CONNECTION_CLOSED');
      assert.ok(err.message.length > 0);
      await rejectsWith(stream, 'IPCBOR_ERR_CONNECTION_CLOSED');
      await aborted.promise;
      // The client is closed, and says so at once for a new call.
      await rejectsWith(client.call('hang'), 'IPCBOR_ERR_CONNECTION_CLOSED');
      await client.close();
    } finally {
      await relay.kill();
      await service.close();
    }
  });
});
