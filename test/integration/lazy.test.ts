/** The lazy server over real sockets: nothing runs until the application asks, and then with its context. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callOnce, connect, serveLazy, type CallContext } from '../../src/index.js';
import { deferred, rejectsWith, sleep, untilAborted, waitFor } from '../extended-helpers.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';
import { golden, hex, toHex } from '../fixtures/golden.js';

interface Sim {
  speed: number;
  log: string[];
}

const admin = {
  setSpeed: (p: { speed: number }, ctx: CallContext) => {
    const sim = ctx.app as Sim;
    sim.log.push(`speed ${p.speed}`);
    sim.speed = p.speed;
    return { speed: sim.speed };
  },
  later: async (p: { ms: number }, ctx: CallContext) => {
    await sleep(p.ms);
    return (ctx.app as Sim).speed;
  },
  hang: (_p: unknown, ctx: CallContext) => untilAborted(ctx.signal),
  version: () => 'nim-timer v0.1.0',
};

describe('lazy server', () => {
  it('runs no handler until handleNewMessages(context), then runs every waiting call with that context', async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const sim: Sim = { speed: 1, log: [] };
    const a = client.call('setSpeed', { speed: 2 });
    const b = client.call('setSpeed', { speed: 3 });
    await waitFor(() => server.pending === 2, 'two parked calls');
    await sleep(20);
    assert.deepEqual(sim.log, [], 'nothing ran in the background');
    assert.equal(server.handleNewMessages(sim), 2);
    // Plain handlers completed inside the call: the state changed already.
    assert.deepEqual(sim.log, ['speed 2', 'speed 3']);
    assert.deepEqual(await Promise.all([a, b]), [{ speed: 2 }, { speed: 3 }]);
    assert.equal(server.handleNewMessages(sim), 0);
  });

  it('handleNewMessagesAsync waits for async handlers', async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const call = client.call('later', { ms: 30 });
    await server.nextMessage();
    assert.equal(await server.handleNewMessagesAsync({ speed: 7, log: [] }), 1);
    assert.equal(await call, 7);
  });

  it('a parked call past its deadline or cancelled is answered at once and skipped', async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`, { maxTimeout: 50 });
    await using client = await connect(server.addresses[0]!);
    await rejectsWith(client.call('version'), 'IPCBOR_ERR_DEADLINE_EXCEEDED');
    const ac = new AbortController();
    const cancelled = client.call('version', {}, { signal: ac.signal });
    await server.nextMessage();
    ac.abort();
    await rejectsWith(cancelled, 'IPCBOR_ERR_CANCELLED');
    await waitFor(() => server.handleNewMessages() === 0 && server.pending === 0, 'nothing left to run');
  });

  it('a running parked call still sees cancellation through ctx.signal', async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const ac = new AbortController();
    const call = client.call('hang', {}, { signal: ac.signal });
    await server.nextMessage();
    const settled = server.handleNewMessagesAsync();
    ac.abort();
    await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    assert.equal(await settled, 1);
  });

  it('bounds its queue by the resource model: a connection piling up calls is no longer read', async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`, { maxConnectionBytes: 16 * 1024 });
    await using client = await connect(server.addresses[0]!);
    const calls = Array.from({ length: 1000 }, (_, i) => client.call('setSpeed', { speed: i }));
    await waitFor(() => server.pending > 0, 'calls parked');
    await sleep(50);
    const parked = server.pending;
    assert.ok(parked < 200, `only what fits the budget is parked (${parked} of 1000)`);
    const sim: Sim = { speed: 0, log: [] };
    let handled = 0;
    while (handled < 1000) {
      handled += server.handleNewMessages(sim);
      if (handled < 1000) await server.nextMessage();
    }
    await Promise.all(calls);
    assert.equal(sim.speed, 999);
  });

  it('answers a base-framing client byte for byte once it runs', async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`);
    const base = await rawConnect(server.addresses[0]!);
    try {
      const r = new RawReader(base);
      base.write(hex(golden.versionRequest));
      await server.nextMessage();
      assert.equal(server.handleNewMessages(), 1);
      assert.equal(toHex((await r.response()).bytes), toHex(hex(golden.versionResponse)));
    } finally {
      base.destroy();
    }
  });

  it("callOnce connects, calls and closes (nim-ffi's client_send)", async () => {
    await using server = await serveLazy(admin, `unix:${tempSocket()}`);
    const answer = callOnce<{ speed: number }>(server.addresses[0]!, 'setSpeed', { speed: 5 });
    await server.nextMessage();
    server.handleNewMessages({ speed: 0, log: [] });
    assert.deepEqual(await answer, { speed: 5 });
    await waitFor(() => server.connections === 0, 'the one-shot client to close');
  });

  it('an unused context reaches handlers as undefined, and a first call made before anyone asks waits', async () => {
    const seen = deferred<unknown>();
    await using server = await serveLazy({ probe: (_p: unknown, ctx: CallContext) => (seen.resolve(ctx.app), 1) }, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const call = client.call('probe');
    await server.nextMessage();
    server.handleNewMessages();
    assert.equal(await seen.promise, undefined);
    assert.equal(await call, 1);
  });
});
