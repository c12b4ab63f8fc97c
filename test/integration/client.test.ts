/**
 * The client over real sockets: both framings, many calls in flight, timeouts,
 * aborts, remote errors, and every way a connection can end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, defineService, IpcborError, method, RemoteError, serve, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { values } from '../fixtures/golden.js';
import { tempSocket } from '../helpers.js';
import { deferred, waitFor } from '../extended-helpers.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { encodeErrorResponse, encodeResponse } from '../../src/core/frame/encoder.js';
import { cbor } from '../../src/core/codec/cbor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, code: string): Promise<IpcborError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IpcborError, `expected IpcborError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected rejection with ${code}`);
}

/** The timer (default service, bare names) and a `test` service beside it. */
function handlers(log: string[] = []) {
  const test = defineService({
    name: 'test',
    version: '1',
    methods: {
      wait: method({
        handler: async (p: { ms: number }, ctx) => {
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(resolve, p.ms);
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(t);
              log.push(`aborted:${(ctx.signal.reason as IpcborError).code}`);
              reject(ctx.signal.reason);
            });
          });
          return p.ms;
        },
      }),
      fail: method({
        handler: () => {
          throw new Error('forced failure for echo');
        },
      }),
    },
  });
  return [createTimer('ipc-server'), test];
}

for (const protocol of ['auto', 'base'] as const) {
  describe(`client (${protocol}) against an ipcbor server`, () => {
    let server: Server;
    let address: string;
    const log: string[] = [];
    before(async () => {
      server = await serve(handlers(log), `unix:${tempSocket()}`, { maxFrameBytes: 1 << 20 });
      address = server.addresses[0]!;
    });
    after(() => server.close());

    it('negotiates the expected framing and calls the timer', async () => {
      await using client = await connect(address, { protocol });
      assert.equal(client.protocol, protocol === 'auto' ? 'extended' : 'base');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0');
      assert.deepEqual(await client.call('echo', values.echoParams), values.echoResult);
      assert.deepEqual(await client.call('schedule', values.scheduleParams), values.scheduleResult);
      assert.deepEqual(await client.call('complex', values.complexParams), values.complexResult);
    });

    it('rejects a failed call with the server text and keeps the connection', async () => {
      await using client = await connect(address, { protocol });
      const err = await rejectsWith(client.call('test.fail'), protocol === 'base' ? 'IPCBOR_ERR_REMOTE' : 'IPCBOR_ERR_HANDLER');
      assert.ok(err instanceof RemoteError);
      assert.equal(err.message, 'forced failure for echo');
      assert.equal(err.method, 'test.fail');
      const unknown = await rejectsWith(client.call('nope'), protocol === 'base' ? 'IPCBOR_ERR_REMOTE' : 'IPCBOR_ERR_UNKNOWN_METHOD');
      assert.equal(unknown.message, 'unknown method: nope');
      await rejectsWith(client.call('echo', { req: { message: 1 } }), protocol === 'base' ? 'IPCBOR_ERR_REMOTE' : 'IPCBOR_ERR_INVALID_PARAMS');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    });

    it('keeps many calls in flight on one connection', async () => {
      await using client = await connect(address, { protocol });
      const calls = Array.from({ length: 500 }, (_, i) => client.call('echo', { req: { message: `m${i}`, delayMs: i % 3 } }));
      assert.equal(client.inflight, 500);
      const results = (await Promise.all(calls)) as { echoed: string }[];
      results.forEach((r, i) => assert.equal(r.echoed, `m${i}`));
      assert.equal(client.inflight, 0);
    });

    it('times a call out without losing the connection', async () => {
      await using client = await connect(address, { protocol });
      await rejectsWith(client.call('test.wait', { ms: 300 }, { timeout: 20 }), 'IPCBOR_ERR_TIMEOUT');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0', 'answers after the late one are matched correctly');
    });

    it('aborts a call through its AbortSignal, before or during the call', async () => {
      await using client = await connect(address, { protocol });
      const ac = new AbortController();
      const p = client.call('test.wait', { ms: 300 }, { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('user gave up')), 10);
      const err = await rejectsWith(p, 'IPCBOR_ERR_CANCELLED');
      assert.equal((err.cause as Error).message, 'user gave up');
      await rejectsWith(client.call('version', {}, { signal: AbortSignal.abort() }), 'IPCBOR_ERR_CANCELLED');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    });

    it('refuses values that cannot be encoded, before sending', async () => {
      await using client = await connect(address, { protocol });
      await rejectsWith(client.call('echo', { when: new Date() }), 'IPCBOR_ERR_ENCODE');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    });

    it('rejects every pending call at once when the connection drops', async () => {
      const local = await serve(handlers(), `unix:${tempSocket()}`);
      const client = await connect(local.addresses[0]!, { protocol });
      // Calls that would take an hour: only the drop can end them (no time bound to race).
      const hour = 3_600_000;
      const pending = [client.call('test.wait', { ms: hour }), client.call('test.wait', { ms: hour }), client.call('echo', { req: { message: 'x', delayMs: hour } })];
      await sleep(20);
      local.destroy();
      for (const p of pending) {
        const err = await rejectsWith(p, 'IPCBOR_ERR_CONNECTION_CLOSED');
        assert.ok(err.method);
      }
      const reason = await client.closed;
      assert.equal(reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      await rejectsWith(client.call('version'), 'IPCBOR_ERR_CONNECTION_CLOSED');
    });
  });
}

describe('client and server edges', () => {
  it('reports a missing server with IPCBOR_ERR_CONNECT', async () => {
    await rejectsWith(connect(`unix:${tempSocket('absent.sock')}`), 'IPCBOR_ERR_CONNECT');
  });

  it('serves 200 concurrent clients on unix and TCP', async () => {
    await using server = await serve(handlers(), [`unix:${tempSocket()}`, 'tcp:127.0.0.1:0']);
    const clients = await Promise.all(Array.from({ length: 200 }, (_, i) => connect(server.addresses[i % 2]!)));
    assert.equal(server.connections, 200);
    const results = await Promise.all(clients.map((c, i) => c.call('echo', { req: { message: `c${i}`, delayMs: 1 } })));
    results.forEach((r, i) => assert.equal((r as { echoed: string }).echoed, `c${i}`));
    await Promise.all(clients.map((c) => c.close()));
  });

  it('close() lets calls in flight finish, then removes the socket file', async () => {
    const path = tempSocket();
    const started = deferred();
    const release = deferred();
    const server = await serve({ slow: async () => (started.resolve(), await release.promise, 'done') }, `unix:${path}`);
    const client = await connect(`unix:${path}`);
    const slow = client.call('slow');
    // In flight for sure (running on the server) before close(), and finished only after it.
    await started.promise;
    const closing = server.close();
    // It stops listening at once (the socket file goes), and waits for the call.
    const { existsSync } = await import('node:fs');
    await waitFor(() => !existsSync(path), 'the socket file to go');
    release.resolve();
    await closing;
    assert.equal(await slow, 'done');
    assert.equal(existsSync(path), false);
    await client.closed;
  });

  it('replaces a stale socket file but never a live one', async () => {
    const path = tempSocket();
    const first = await serve(handlers(), `unix:${path}`);
    await rejectsWith(serve(handlers(), `unix:${path}`), 'IPCBOR_ERR_ALREADY_RUNNING');
    first.destroy();
    // Simulate a crash: a socket file with nobody behind it.
    const stale = createServer();
    await new Promise<void>((r) => stale.listen(path, r));
    const { unlinkSync, linkSync } = await import('node:fs');
    linkSync(path, `${path}.keep`);
    await new Promise<void>((r) => stale.close(() => r()));
    linkSync(`${path}.keep`, path);
    unlinkSync(`${path}.keep`);
    await using second = await serve(handlers(), `unix:${path}`);
    await using c = await connect(`unix:${path}`);
    assert.equal(await c.call('version'), 'nim-timer v0.1.0');
  });

  it('rejects pending calls at once when the server process is killed mid-call', async () => {
    const path = tempSocket();
    const serverJs = fileURLToPath(new URL('../../examples/timer/server.js', import.meta.url));
    const child = spawn(process.execPath, [serverJs, '--unix', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout!, 'data');
    const client = await connect(`unix:${path}`);
    const call = client.call('echo', { req: { message: 'never', delayMs: 10_000 } });
    await sleep(20);
    child.kill('SIGKILL');
    await rejectsWith(call, 'IPCBOR_ERR_CONNECTION_CLOSED');
  });
});

describe('client against base-framing peers (no extended protocol)', () => {
  /** A base-framing-style server written from the facts of nim-ffi's examples: one request at a time, empty body for an unknown method. */
  async function basePeer(onUnknown: 'empty' | 'text' | 'close') {
    const path = tempSocket();
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      const d = new FrameDecoder('request', {
        request: (method, payload) => {
          if (method === 'version') {
            for (const part of encodeResponse(0, cbor.encode('nim-timer v0.1.0'))) s.write(part);
          } else if (method === 'echo') {
            const { req } = cbor.decode(payload) as { req: { message: string } };
            for (const part of encodeResponse(0, cbor.encode({ echoed: req.message, timerName: 'ipc-server' }))) s.write(part);
          } else if (onUnknown === 'close') {
            s.destroy();
          } else if (onUnknown === 'text') {
            // The Nim reference names the method.
            for (const part of encodeErrorResponse(`unknown method: ${method}`)) s.write(part);
          } else {
            for (const part of encodeResponse(1, new Uint8Array(0))) s.write(part);
          }
        },
      });
      s.on('data', (c) => d.push(c));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(path, r));
    return {
      address: `unix:${path}`,
      close: () => {
        for (const s of sockets) s.destroy();
        server.close();
      },
    };
  }

  const what = { empty: 'answers ret 1 with an empty body (C)', text: 'answers ret 1 "unknown method: …" (Nim)', close: 'drops the connection' };
  for (const behaviour of ['empty', 'text', 'close'] as const) {
    it(`falls back to the base framing when the peer ${what[behaviour]}`, async () => {
      const peer = await basePeer(behaviour);
      try {
        await using client = await connect(peer.address);
        assert.equal(client.protocol, 'base');
        assert.equal(await client.call('version'), 'nim-timer v0.1.0');
        assert.deepEqual(await client.call('echo', values.echoParams), values.echoResult);
        await rejectsWith(connect(peer.address, { protocol: 'extended' }), behaviour === 'close' ? 'IPCBOR_ERR_CONNECTION_CLOSED' : 'IPCBOR_ERR_NOT_SUPPORTED');
        assert.throws(() => client.subscribe('x'), (e: IpcborError) => e.code === 'IPCBOR_ERR_NOT_SUPPORTED');
      } finally {
        peer.close();
      }
    });
  }

  it('reports an empty error body from a base-framing peer with a readable message', async () => {
    const peer = await basePeer('empty');
    try {
      await using client = await connect(peer.address, { protocol: 'base' });
      const err = await rejectsWith(client.call('nope'), 'IPCBOR_ERR_REMOTE');
      assert.equal(err.message, 'the server reported an error without text');
    } finally {
      peer.close();
    }
  });

  it('treats an answer to no request as a protocol error and closes', async () => {
    const path = tempSocket();
    const server = createServer((s) => {
      for (const p of encodeErrorResponse('unsolicited')) s.write(p);
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const client = await connect(`unix:${path}`, { protocol: 'base' });
      const reason = await client.closed;
      assert.equal(reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      assert.match(reason.message, /answer to no request/);
    } finally {
      server.close();
    }
  });
});
