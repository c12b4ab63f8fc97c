/**
 * Faults (issue 9, item 4): a server process killed mid-call, a client
 * process killed mid-request, half-open TCP (a proxy that stops forwarding
 * and never closes stands in for a network partition), ECONNRESET and
 * EPIPE storms, a runtime directory removed under a running server. In
 * each, nothing may escape as an unhandled rejection or an uncaught
 * exception. Bounds are generous (the machine is shared): they check that
 * things happen, not how fast.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { connect, serve, type ClientStateChange, type Server } from '../../src/index.js';
import { serveWith } from '../../src/node/server.js';
import type { ServerCore } from '../../src/core/server/server.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended } from '../../src/core/frame/encoder.js';
import { Kind } from '../../src/core/protocol/heads.js';
import { rawHello, baseFrame, startServer } from '../attack/harness.js';
import { tempSocket } from '../helpers.js';
import { rejectsWith, sleep, waitFor } from '../extended-helpers.js';
import { nothingEscapes } from '../escapes.js';

nothingEscapes();

const CLIENT_SCRIPT = fileURLToPath(new URL('./fault-client.js', import.meta.url));
const noop = () => {};

describe('faults: a server process killed (SIGKILL) mid-call', () => {
  it('rejects every pending call and ends result streams with IPCBOR_ERR_CONNECTION_CLOSED, promptly', async () => {
    const child = await startServer({ address: `unix:${tempSocket()}` });
    try {
      const client = await connect(child.address);
      const calls = Array.from({ length: 20 }, () => client.call('hang'));
      const stream = (await client.call('stream', { n: 1_000_000, size: 16 })) as AsyncIterable<unknown>;
      const items = stream[Symbol.asyncIterator]();
      await items.next();
      const killedAt = Date.now();
      child.proc.kill('SIGKILL');
      for (const c of calls) await rejectsWith(c, 'IPCBOR_ERR_CONNECTION_CLOSED');
      await assert.rejects(
        (async () => {
          for (;;) if ((await items.next()).done) return;
        })(),
        { code: 'IPCBOR_ERR_CONNECTION_CLOSED' },
      );
      assert.ok(Date.now() - killedAt < 5000, 'well before any timeout');
      assert.equal((await client.closed).code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      await rejectsWith(client.call('version'), 'IPCBOR_ERR_CONNECTION_CLOSED');
    } finally {
      await child.kill();
    }
  });

  it('a reconnecting client rejects the calls in flight, reconnects to the restarted server and restores its subscription', async () => {
    const address = `unix:${tempSocket()}`;
    let child = await startServer({ address });
    try {
      const client = await connect(address, { reconnect: { initialDelay: 20, maxDelay: 200 } });
      const got: unknown[] = [];
      const sub = client.subscribe<{ seq: number }>('tick', (p) => got.push(p.seq));
      await sub.ready;
      await client.call('fire', { n: 1, size: 1 });
      await waitFor(() => got.length === 1, 'the first event');
      const inflight = client.call('hang');
      await sleep(20);
      child.proc.kill('SIGKILL');
      await rejectsWith(inflight, 'IPCBOR_ERR_CONNECTION_CLOSED');
      await child.exited;
      // A stale socket file stays behind; the new server takes its place.
      child = await startServer({ address });
      await waitFor(() => client.state === 'open', 'open again', 15_000);
      await sub.ready;
      await client.call('fire', { n: 1, size: 1 });
      await waitFor(() => got.length === 2, 'the event from the new server');
      await client.close();
    } finally {
      await child.kill();
    }
  });
});

/** A server whose `hold` handlers keep their params until their signal aborts, counting both. */
async function holdingServer(address: string, options = {}): Promise<{ server: Server; core: ServerCore; started: () => number; aborted: () => number }> {
  let started = 0;
  let aborted = 0;
  const { server, core } = await serveWith(
    {
      echo: (p: unknown) => p,
      hold: (_p: unknown, ctx: CallContext) => {
        started++;
        return new Promise((resolve) =>
          ctx.signal.addEventListener(
            'abort',
            () => {
              aborted++;
              resolve(null);
            },
            { once: true },
          ),
        );
      },
    },
    address,
    options,
    undefined,
  );
  return { server, core, started: () => started, aborted: () => aborted };
}

function spawnClient(cfg: object): { proc: ReturnType<typeof spawn>; ready: Promise<void> } {
  const proc = spawn(process.execPath, [CLIENT_SCRIPT, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (code, signal) => reject(new Error(`the client exited (${code ?? signal}) before it was ready`)));
  });
  return { proc, ready };
}

describe('faults: a client process killed (SIGKILL) mid-request', () => {
  it('aborts the handlers of its calls and returns the server budget to 0', async () => {
    const address = `unix:${tempSocket()}`;
    const { server, core, started, aborted } = await holdingServer(address);
    try {
      const n = 8;
      const { proc, ready } = spawnClient({ address, mode: 'calls', n, size: 64 * 1024 });
      await ready;
      await waitFor(() => started() === n, 'every handler running', 10_000);
      assert.ok(core.budget.held > 0, 'the calls hold bytes');
      proc.kill('SIGKILL');
      await waitFor(() => aborted() === n, 'every handler aborted', 10_000);
      await waitFor(() => core.budget.held === 0, 'the budget back to 0', 10_000);
      await waitFor(() => server.connections === 0, 'the connection gone', 10_000);
    } finally {
      await server.close();
    }
  });

  it('releases the bytes of a frame it was still sending', async () => {
    const address = `unix:${tempSocket()}`;
    const { server, core } = await holdingServer(address);
    try {
      const size = 1024 * 1024;
      const { proc, ready } = spawnClient({ address, mode: 'partial', size });
      await ready;
      await waitFor(() => core.budget.held >= size / 4, 'the partial frame charged', 10_000);
      proc.kill('SIGKILL');
      await waitFor(() => core.budget.held === 0 && server.connections === 0, 'the budget back to 0', 10_000);
    } finally {
      await server.close();
    }
  });
});

/**
 * A TCP proxy that can go silent: stall() makes every connection through
 * it (and every new one) drop what it carries and never close, as a
 * partitioned network would; resume() lets new connections through again.
 */
class StallingProxy {
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  port = 0;
  constructor(private readonly targetPort: number) {
    this.server = createServer({ allowHalfOpen: true }, (down) => {
      const up = createConnection({ host: '127.0.0.1', port: this.targetPort, allowHalfOpen: true });
      const pair = { dead: this.stalled };
      this.pairs.push(pair);
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on('error', noop);
        s.on('close', () => {
          this.sockets.delete(s);
          if (!pair.dead) (s === up ? down : up).destroy();
        });
      }
      down.on('data', (d) => !pair.dead && up.write(d));
      up.on('data', (d) => !pair.dead && down.write(d));
      down.on('end', () => !pair.dead && up.end());
      up.on('end', () => !pair.dead && down.end());
    });
  }
  private readonly pairs: { dead: boolean }[] = [];
  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }
  stall(): void {
    this.stalled = true;
    for (const p of this.pairs) p.dead = true;
  }
  resume(): void {
    this.stalled = false;
  }
  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

describe('faults: half-open TCP (the peer vanishes without a FIN)', () => {
  it("the server's idleTimeout closes its side; the reconnecting client's idleTimeout notices its dead connection and reconnects", async () => {
    const server = await serve({ echo: (p: unknown) => p }, 'tcp:127.0.0.1:0', { idleTimeout: 300 });
    const port = Number(server.addresses[0]!.split(':').at(-1));
    const proxy = new StallingProxy(port);
    await proxy.listen();
    try {
      const client = await connect(`tcp:127.0.0.1:${proxy.port}`, { reconnect: { initialDelay: 20, maxDelay: 200 }, idleTimeout: 300, connectTimeout: 500, keepAlive: 1000 });
      const seen: ClientStateChange[] = [];
      void (async () => {
        for await (const c of client.states()) seen.push(c);
      })();
      const got: unknown[] = [];
      const sub = client.subscribe('tick', (p) => got.push(p));
      await sub.ready;
      proxy.stall();
      // Nothing crosses any more: both ends must find out by themselves.
      await waitFor(() => server.connections === 0, "the server's side closed by its idle timeout", 15_000);
      await waitFor(() => seen.some((c) => c.state === 'reconnecting'), 'the client noticed', 15_000);
      // Attempts through the silent proxy fail (the hello is never answered)…
      await waitFor(() => seen.some((c) => c.state === 'reconnecting' && (c.attempt ?? 0) >= 2), 'a failed attempt', 15_000);
      assert.notEqual(client.state, 'open');
      await rejectsWith(client.call('echo', 1), 'IPCBOR_ERR_CONNECTION_CLOSED');
      // …until the network heals.
      proxy.resume();
      await waitFor(() => client.state === 'open', 'open again', 15_000);
      await sub.ready;
      server.emit('tick', 'after');
      await waitFor(() => got.includes('after'), 'the restored subscription', 5000);
      await client.close();
    } finally {
      proxy.close();
      server.destroy();
    }
  });
});

describe('faults: ECONNRESET and EPIPE storms', () => {
  const big = new Uint8Array(2 * 1024 * 1024);
  for (const kind of ['tcp', 'unix'] as const) {
    it(`${kind}: clients cut off mid-frame, mid-answer and mid-stream; the server serves the others and releases everything`, async () => {
      const address = kind === 'tcp' ? 'tcp:127.0.0.1:0' : `unix:${tempSocket()}`;
      const { server, core } = await serveWith(
        {
          echo: (p: unknown) => p,
          big: () => big,
          many: async function* () {
            for (let i = 0; i < 10_000; i++) yield new Uint8Array(1024);
          },
        },
        address,
        {},
        undefined,
      );
      const at = server.addresses[0]!;
      const probe = await connect(at);
      let probing = true;
      let probes = 0;
      const probeLoop = (async () => {
        while (probing) {
          assert.deepEqual(await probe.call('echo', { i: probes }), { i: probes });
          probes++;
          await sleep(5);
        }
      })();
      const cut = (s: Socket) => (kind === 'tcp' ? s.resetAndDestroy() : s.destroy());
      const open = async (): Promise<Socket> => {
        const s = kind === 'tcp' ? createConnection({ host: '127.0.0.1', port: Number(at.split(':').at(-1)) }) : createConnection(at.slice('unix:'.length));
        s.on('error', noop);
        await once(s, 'connect');
        return s;
      };
      try {
        for (let wave = 0; wave < 3; wave++) {
          await Promise.all(
            Array.from({ length: 40 }, async (_, i) => {
              const s = await open();
              switch (i % 4) {
                case 0: {
                  // Mid-frame: half a request.
                  const f = baseFrame('echo', cbor.encode({ pad: new Uint8Array(64 * 1024) }));
                  s.write(f.subarray(0, f.length >> 1));
                  await sleep(i % 7);
                  break;
                }
                case 1: {
                  // Mid-answer (base framing): a 2 MiB answer, cut when its first bytes arrive.
                  s.write(baseFrame('big', cbor.encode({})));
                  await once(s, 'data');
                  break;
                }
                case 2: {
                  // Extended: several big answers asked for, cut without reading them.
                  await rawHello(s);
                  for (let id = 1; id <= 4; id++) s.write(Buffer.concat(encodeExtended(cbor.encode([Kind.Call, id, 'big']), cbor.encode({}))));
                  await sleep(i % 5);
                  break;
                }
                default: {
                  // Extended: a result stream, cut mid-stream.
                  await rawHello(s);
                  s.resume();
                  s.write(Buffer.concat(encodeExtended(cbor.encode([Kind.Call, 1, 'many']), cbor.encode({}))));
                  await once(s, 'data');
                }
              }
              cut(s);
            }),
          );
        }
        probing = false;
        await probeLoop;
        assert.ok(probes > 0);
        await waitFor(() => server.connections === 1, 'only the probe left', 15_000);
        await waitFor(() => core.budget.held === 0, 'the budget back to 0', 15_000);
        assert.deepEqual(await probe.call('echo', 'still here'), 'still here');
      } finally {
        probing = false;
        await probeLoop.catch(noop);
        await probe.close();
        await server.close();
      }
    });
  }
});

describe('faults: the runtime directory removed under a running server', () => {
  let saved: string | undefined;
  let base: string;
  beforeEach(() => {
    saved = process.env.IPCBOR_RUNDIR;
    base = mkdtempSync(join(tmpdir(), 'ipcbor-f-'));
    process.env.IPCBOR_RUNDIR = join(base, 'run');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.IPCBOR_RUNDIR;
    else process.env.IPCBOR_RUNDIR = saved;
    rmSync(base, { recursive: true, force: true });
  });

  it('new clients get IPCBOR_ERR_CONNECT, a connected client keeps working, close() does not throw; a reconnecting client gives up with IPCBOR_ERR_CONNECT as the cause', async () => {
    const server = await serve({ echo: (p: unknown) => p }, 'faulty');
    const before = await connect('faulty');
    const reconnecting = await connect('faulty', { reconnect: { initialDelay: 5, maxDelay: 20, maxAttempts: 3 } });
    rmSync(join(base, 'run'), { recursive: true, force: true });
    await rejectsWith(connect('faulty'), 'IPCBOR_ERR_CONNECT');
    assert.equal(await before.call('echo', 1), 1, 'the connection made before still works');
    await server.close();
    assert.equal((await before.closed).code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    const reason = await reconnecting.closed;
    assert.equal(reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal((reason.cause as { code?: string }).code, 'IPCBOR_ERR_CONNECT');
  });
});
