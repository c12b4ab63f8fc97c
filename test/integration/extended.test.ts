/**
 * The extended protocol end to end over real sockets (docs/PROTOCOL.md
 * §6–§9): negotiation and frame limits, multiplexed calls, cancellation and
 * deadlines, notifications, and the base framing served unchanged beside it.
 * Streams and events have their own files (extended-streams, extended-events).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, RemoteError, serve, type CallContext } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { golden, hex, baseRequestHex, toHex } from '../fixtures/golden.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';
import { RawExtended, codeOf, deferred, microtasks, payloadOf, rejectsWith, sleep, untilAborted, waitFor } from '../extended-helpers.js';

const unix = () => `unix:${tempSocket()}`;
const addressFor = (transport: 'unix' | 'tcp') => (transport === 'unix' ? unix() : 'tcp:127.0.0.1:0');

describe('extended protocol: negotiation and frame limits', () => {
  for (const transport of ['unix', 'tcp'] as const) {
    it(`connect() opens the extended protocol over ${transport} and learns the server's limits`, async () => {
      const protocols: string[] = [];
      await using server = await serve(
        {
          ping: (_p: unknown, ctx: CallContext) => {
            protocols.push(ctx.connection.protocol);
            return 'pong';
          },
        },
        addressFor(transport),
        { maxFrameBytes: 4096, window: 16, maxInflight: 100 },
      );
      await using client = await connect(server.addresses[0]!);
      assert.equal(client.protocol, 'extended');
      assert.deepEqual(client.server, { version: 1, maxFrameBytes: 4096, window: 16, maxInflight: 100, server: 'ipcbor' });
      assert.equal(await client.call('ping'), 'pong');
      assert.deepEqual(protocols, ['extended'], 'the handler sees the negotiated framing');
    });
  }

  it('stays on the base framing with a server that has { extended: false }', async () => {
    const protocols: string[] = [];
    await using server = await serve(
      {
        ping: (_p: unknown, ctx: CallContext) => {
          protocols.push(ctx.connection.protocol);
          return 'pong';
        },
      },
      unix(),
      { extended: false },
    );
    await using client = await connect(server.addresses[0]!);
    assert.equal(client.protocol, 'base');
    assert.equal(client.server, undefined);
    assert.equal(await client.call('ping'), 'pong');
    assert.deepEqual(protocols, ['base']);
    await rejectsWith(connect(server.addresses[0]!, { protocol: 'extended' }), 'IPCBOR_ERR_NOT_SUPPORTED');
  });

  it('refuses params over the server\'s announced maxFrameBytes before sending them', async () => {
    let calls = 0;
    await using server = await serve(
      {
        take: (p: { s: string }) => {
          calls++;
          return p.s.length;
        },
      },
      unix(),
      { maxFrameBytes: 1024 },
    );
    await using client = await connect(server.addresses[0]!);
    assert.equal(client.server?.maxFrameBytes, 1024);
    const err = await rejectsWith(client.call('take', { s: 'x'.repeat(2000) }), 'IPCBOR_ERR_FRAME_TOO_LARGE');
    assert.ok(!(err instanceof RemoteError), 'refused locally, not by the server');
    assert.equal(err.method, 'take');
    assert.throws(() => client.notify('take', { s: 'x'.repeat(2000) }), (e: RemoteError) => e.code === 'IPCBOR_ERR_FRAME_TOO_LARGE');
    assert.equal(client.inflight, 0);
    assert.equal(await client.call('take', { s: 'x'.repeat(900) }), 900, 'a frame under the limit still goes through');
    assert.equal(calls, 1, 'the oversize params never reached the handler');
  });

  it('answers a result over the client\'s maxFrameBytes with an IPCBOR_ERR_FRAME_TOO_LARGE error, keeping the connection', async () => {
    await using server = await serve({ big: (p: { n: number }) => 'y'.repeat(p.n) }, unix());
    await using client = await connect(server.addresses[0]!, { maxFrameBytes: 1024 });
    const err = await rejectsWith(client.call('big', { n: 2000 }), 'IPCBOR_ERR_FRAME_TOO_LARGE');
    assert.ok(err instanceof RemoteError, 'the server refused to send it');
    assert.equal(err.method, 'big');
    assert.equal(await client.call('big', { n: 1000 }), 'y'.repeat(1000));
    assert.equal(client.inflight, 0);
  });
});

describe('extended protocol: multiplexing', () => {
  it('does not hold a fast answer back behind a slow call on the same connection', async () => {
    // `slow` finishes only when the test says so: the order is the test's, not the timers'.
    let gate = deferred();
    let fastRan = deferred();
    await using server = await serve(
      {
        slow: async () => {
          await gate.promise;
          return 'slow';
        },
        fast: () => {
          fastRan.resolve();
          return 'fast';
        },
      },
      unix(),
    );
    const order: string[] = [];
    {
      await using client = await connect(server.addresses[0]!);
      // The slow call is released only once the fast answer has reached the client.
      const slow = client.call<string>('slow').then((v) => order.push(v));
      const fast = client.call<string>('fast').then((v) => {
        order.push(v);
        gate.resolve();
      });
      await Promise.all([slow, fast]);
      assert.deepEqual(order, ['fast', 'slow'], 'the fast answer settles first');
    }
    // The base framing, for contrast, answers in request order: the slow
    // call is released once the fast one has run on the server, and its
    // answer still comes first.
    order.length = 0;
    gate = deferred();
    fastRan = deferred();
    void fastRan.promise.then(() => gate.resolve());
    await using base = await connect(server.addresses[0]!, { protocol: 'base' });
    await Promise.all([base.call<string>('slow').then((v) => order.push(v)), base.call<string>('fast').then((v) => order.push(v))]);
    assert.deepEqual(order, ['slow', 'fast']);
  });

  it('settles 5,000 calls in flight on one connection, each with its own answer', async () => {
    let running = 0;
    let most = 0;
    await using server = await serve(
      {
        twice: async (p: { i: number }) => {
          most = Math.max(most, ++running);
          if (p.i % 4 !== 0) await sleep(p.i % 4);
          running--;
          return p.i * 2;
        },
      },
      unix(),
    );
    await using client = await connect(server.addresses[0]!);
    const calls = Array.from({ length: 5000 }, (_, i) => client.call<number>('twice', { i }));
    assert.equal(client.inflight, 5000);
    const results = await Promise.all(calls);
    results.forEach((r, i) => assert.equal(r, i * 2));
    assert.equal(client.inflight, 0);
    assert.ok(most > 1, `the server ran calls concurrently (at most ${most} at once)`);
  });
});

/** A server whose `hang` handler runs until its signal fires, reporting the context and the abort reason. */
async function hangingServer(options: Parameters<typeof serve>[2] = {}) {
  let started = deferred<CallContext>();
  let aborted = deferred<unknown>();
  const server = await serve(
    {
      hang: async (_p: unknown, ctx: CallContext) => {
        ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason), { once: true });
        started.resolve(ctx);
        return untilAborted(ctx.signal);
      },
      ping: () => 'pong',
    },
    unix(),
    options,
  );
  return {
    server,
    started: () => started.promise,
    aborted: () => aborted.promise,
    reset() {
      started = deferred<CallContext>();
      aborted = deferred<unknown>();
    },
  };
}

describe('extended protocol: cancellation and deadlines', () => {
  it('rejects an aborted call with IPCBOR_ERR_CANCELLED at once, and the handler\'s signal fires with IPCBOR_ERR_CANCELLED', async () => {
    const h = await hangingServer();
    await using server = h.server;
    await using client = await connect(server.addresses[0]!);
    const ac = new AbortController();
    let settled: string | undefined;
    const call = client.call('hang', {}, { signal: ac.signal });
    call.catch((e: RemoteError) => (settled = e.code));
    const ctx = await h.started();
    assert.equal(ctx.deadline, undefined, 'no deadline without a timeout');
    ac.abort(new Error('user gave up'));
    await microtasks();
    assert.equal(settled, 'IPCBOR_ERR_CANCELLED', 'settled before any I/O could happen');
    const err = await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    assert.equal((err.cause as Error).message, 'user gave up');
    assert.equal(codeOf(await h.aborted()), 'IPCBOR_ERR_CANCELLED', 'the CANCEL reached the handler');
    assert.equal(client.inflight, 0);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('does not send a call whose signal is already aborted', async () => {
    const h = await hangingServer();
    await using server = h.server;
    await using client = await connect(server.addresses[0]!);
    await rejectsWith(client.call('hang', {}, { signal: AbortSignal.abort() }), 'IPCBOR_ERR_CANCELLED');
    assert.equal(await client.call('ping'), 'pong');
    const started = await Promise.race([h.started().then(() => true), Promise.resolve(false)]);
    assert.equal(started, false, 'the handler never ran');
  });

  it('times a call out with IPCBOR_ERR_TIMEOUT; the deadline travels to the handler, whose signal fires', async () => {
    const h = await hangingServer();
    await using server = h.server;
    await using client = await connect(server.addresses[0]!);
    const before = Date.now();
    const call = client.call('hang', {}, { timeout: 100 });
    const ctx = await h.started();
    assert.ok(ctx.deadline !== undefined, 'ctx.deadline is set when a timeout is given');
    assert.ok(ctx.deadline >= before + 100 && ctx.deadline <= Date.now() + 100, `deadline ${ctx.deadline - before} ms after the call`);
    await rejectsWith(call, 'IPCBOR_ERR_TIMEOUT');
    // The client's timer and the server's deadline timer are set to the same
    // number of ms: whichever the server sees first (the client's CANCEL or
    // its own deadline) names the reason, so both codes are possible here.
    // See the raw-frame test below for the deterministic server-side deadline.
    const reason = codeOf(await h.aborted());
    assert.ok(reason === 'IPCBOR_ERR_DEADLINE_EXCEEDED' || reason === 'IPCBOR_ERR_CANCELLED', reason);
    assert.equal(client.inflight, 0);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('stops the handler when a timeout sent on the wire passes, answering ERROR IPCBOR_ERR_DEADLINE_EXCEEDED (raw frames)', async () => {
    const h = await hangingServer();
    await using server = h.server;
    const raw = await RawExtended.open(server.addresses[0]!);
    try {
      raw.send([1, 7, 'hang', { timeout: 50 }], {});
      const ctx = await h.started();
      assert.ok(ctx.deadline !== undefined);
      const frame = await raw.next();
      assert.deepEqual(frame.head, [5, 7, 'IPCBOR_ERR_DEADLINE_EXCEEDED', 'deadline of 50 ms exceeded']);
      assert.equal(codeOf(await h.aborted()), 'IPCBOR_ERR_DEADLINE_EXCEEDED');
      // A CANCEL, by contrast, stops the handler and nothing at all comes back for that id.
      h.reset();
      raw.send([1, 8, 'hang'], {});
      await h.started();
      raw.send([3, 8]);
      assert.equal(codeOf(await h.aborted()), 'IPCBOR_ERR_CANCELLED');
      raw.send([1, 9, 'ping'], {});
      const next = await raw.next();
      assert.deepEqual(next.head, [4, 9], 'the next frame is the answer to the next call');
      assert.equal(payloadOf(next), 'pong');
    } finally {
      raw.destroy();
    }
  });

  it('caps a call without a timeout at the server\'s maxTimeout: RemoteError IPCBOR_ERR_DEADLINE_EXCEEDED', async () => {
    const h = await hangingServer({ maxTimeout: 50 });
    await using server = h.server;
    await using client = await connect(server.addresses[0]!);
    const before = Date.now();
    const call = client.call('hang');
    const ctx = await h.started();
    assert.ok(ctx.deadline !== undefined && ctx.deadline <= Date.now() + 50 && ctx.deadline >= before + 50, 'the capped deadline is visible');
    const err = await rejectsWith(call, 'IPCBOR_ERR_DEADLINE_EXCEEDED');
    assert.ok(err instanceof RemoteError);
    assert.equal(err.method, 'hang');
    assert.equal(codeOf(await h.aborted()), 'IPCBOR_ERR_DEADLINE_EXCEEDED');
    // A longer timeout than the cap is cut to the cap, too.
    h.reset();
    await rejectsWith(client.call('hang', {}, { timeout: 10_000 }), 'IPCBOR_ERR_DEADLINE_EXCEEDED');
    assert.equal(codeOf(await h.aborted()), 'IPCBOR_ERR_DEADLINE_EXCEEDED');
    assert.equal(await client.call('ping'), 'pong');
  });

  // The server stops reading a connection at maxInflight (PAUSE_INFLIGHT), and
  // with it the CANCEL frames (and the EOF) that would let those calls end.
  it('delivers CANCEL to handlers even when the connection is at maxInflight', async () => {
    let aborts = 0;
    const started: (() => void)[] = [];
    const server = await serve(
      {
        hang: (_p: unknown, ctx: CallContext) => {
          ctx.signal.addEventListener('abort', () => aborts++);
          started.shift()?.();
          return untilAborted(ctx.signal);
        },
        ping: () => 'pong',
      },
      unix(),
      { maxInflight: 2 },
    );
    const client = await connect(server.addresses[0]!);
    try {
      const both = [deferred(), deferred()];
      started.push(both[0]!.resolve, both[1]!.resolve);
      const acs = [new AbortController(), new AbortController()];
      const calls = acs.map((ac) => client.call('hang', {}, { signal: ac.signal }).catch((e: RemoteError) => e.code));
      await Promise.all(both.map((d) => d.promise));
      for (const ac of acs) ac.abort();
      assert.deepEqual(await Promise.all(calls), ['IPCBOR_ERR_CANCELLED', 'IPCBOR_ERR_CANCELLED']);
      // (The timeout turns a connection left blocked into a failure; it is not a race with the answer.)
      assert.equal(await client.call('ping', {}, { timeout: 20_000 }), 'pong', 'the connection takes new calls once the cancelled ones are gone');
      assert.equal(aborts, 2, 'both handlers saw their signal fire');
    } finally {
      client.destroy();
      server.destroy();
    }
  });

  it('aborts running handlers when a client at maxInflight disconnects', async () => {
    const h = await hangingServer({ maxInflight: 1 });
    const client = await connect(h.server.addresses[0]!);
    try {
      client.call('hang').catch(() => {});
      await h.started();
      client.call('ping').catch(() => {}); // buffered, unread, on the server's side
      await sleep(10);
      client.destroy();
      // Awaited, not raced against a timer: a handler left running fails the test at its timeout.
      assert.equal(codeOf(await h.aborted()), 'IPCBOR_ERR_CONNECTION_CLOSED');
    } finally {
      client.destroy();
      h.server.destroy();
    }
  });
});

describe('extended protocol: notifications', () => {
  it('runs a notification\'s handler and sends nothing back', async () => {
    const got = deferred<{ params: unknown; ctx: CallContext }>();
    await using server = await serve({ log: (params: unknown, ctx: CallContext) => got.resolve({ params, ctx }), ping: () => 'pong' }, unix());
    await using client = await connect(server.addresses[0]!);
    client.notify('log', { line: 'one-way' });
    assert.equal(client.inflight, 0, 'nothing to wait for');
    const { params, ctx } = await got.promise;
    assert.deepEqual(params, { line: 'one-way' });
    assert.equal(ctx.method, 'log');
    assert.equal(await client.call('ping'), 'pong');

    // On the wire: after a NOTIFY the next frame is the answer to the next call.
    const raw = await RawExtended.open(server.addresses[0]!);
    try {
      raw.send([2, 'log'], { line: 'raw' });
      raw.send([1, 1, 'ping'], {});
      const frame = await raw.next();
      assert.deepEqual(frame.head, [4, 1]);
      assert.equal(payloadOf(frame), 'pong');
      assert.equal(raw.frames.length, 0);
    } finally {
      raw.destroy();
    }
  });

  it('keeps the connection after a notification to an unknown method or a throwing handler', async () => {
    const errors: string[] = [];
    await using server = await serve(
      {
        boom: () => {
          throw new Error('boom');
        },
        ping: () => 'pong',
      },
      unix(),
      { onError: (err) => errors.push(codeOf(err)) },
    );
    await using client = await connect(server.addresses[0]!);
    client.notify('nope', { x: 1 });
    client.notify('boom');
    assert.equal(await client.call('ping'), 'pong');
    await waitFor(() => errors.length === 2, 'both failures reported to onError');
    assert.deepEqual(errors.sort(), ['IPCBOR_ERR_HANDLER', 'IPCBOR_ERR_UNKNOWN_METHOD']);
    assert.equal(client.protocol, 'extended');
    assert.equal(await client.call('ping'), 'pong');
  });
});

describe('extended protocol: the base framing beside it', () => {
  for (const transport of ['unix', 'tcp'] as const) {
    it(`answers a raw base-framing client with the golden bytes while extended clients share the server (${transport})`, async () => {
      await using server = await serve(createTimer('ipc-server'), addressFor(transport));
      const address = server.addresses[0]!;
      await using ext = await connect(address);
      const events: string[] = [];
      using sub = ext.subscribe('*', (_payload, name) => events.push(name));
      await sub.ready;
      const busy = Array.from({ length: 50 }, (_, i) => ext.call('echo', { req: { message: `x${i}`, delayMs: i % 3 } }));

      const base = await rawConnect(address);
      try {
        const r = new RawReader(base);
        // Pipelined, as a base-framing client may: answers come back in request order.
        base.write(Buffer.concat([hex(golden.versionRequest), hex(golden.echoRequest)]));
        const expected = toHex(hex(golden.versionResponse)) + toHex(hex(golden.echoResponse));
        assert.equal(toHex(await r.read(expected.length / 2)), expected);
        await Promise.all(busy);
        // Nothing else was sent to the base-framing connection (no events, no extended
        // frames): the next answer starts exactly where the last one ended.
        base.write(hex(golden.versionRequest));
        assert.equal(toHex((await r.response()).bytes), toHex(hex(golden.versionResponse)));
        // The reserved names keep their base-framing meaning there.
        base.write(Buffer.concat([hex(baseRequest('$ipcbor.subscribe', { event: '*' })), hex(baseRequest('$ipcbor.hello', { version: 1, maxFrameBytes: 1024, window: 4 }))]));
        const sub1 = await r.response();
        assert.deepEqual([sub1.ret, sub1.body.toString()], [1, 'events need the extended protocol']);
        const hello = await r.response();
        assert.deepEqual([hello.ret, hello.body.toString()], [1, 'unknown method: $ipcbor.hello'], 'a hello is only a hello as the first request');
      } finally {
        base.destroy();
      }
      await waitFor(() => events.length === 51, 'the events of all 51 echoes');
      assert.ok(events.every((n) => n === 'on_echo_fired'), '"*" names a default service\'s events by their bare name');
    });
  }
});

/** A base-framing request frame as hex, params CBOR-encoded. */
function baseRequest(method: string, params: unknown): string {
  return baseRequestHex(method, toHex(cbor.encode(params)));
}
