/**
 * Reconnection (opt-in): backoff, the state and its changes, restored
 * subscriptions, calls made while disconnected (fail or wait), calls in
 * flight when the connection drops, giving up, and close() while
 * reconnecting. Real unix sockets; the "server restart" is a server
 * destroyed and a new one on the same path.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { connect, defineService, method, serve, type Client, type ClientStateChange, type Server } from '../../src/index.js';
import { backoffDelay } from '../../src/core/client/client.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { REFUSING_MAX } from '../../src/core/server/server.js';
import { encodeErrorResponse } from '../../src/core/frame/encoder.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { deferred, rejectsWith, sleep, waitFor } from '../extended-helpers.js';
import { nothingEscapes } from '../escapes.js';

nothingEscapes();

const FAST = { initialDelay: 20, maxDelay: 100 };

function handlers(tag: string, started?: () => void) {
  return {
    who: () => tag,
    echo: (p: unknown) => p,
    hang: (_p: unknown, ctx: CallContext) => {
      started?.();
      return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true }));
    },
  };
}

/** Collect a client's state changes in the background. */
function record(client: Client): ClientStateChange[] {
  const seen: ClientStateChange[] = [];
  void (async () => {
    for await (const c of client.states()) seen.push(c);
  })();
  return seen;
}

describe('reconnection', () => {
  let path: string;
  let address: string;
  let servers: Server[];
  const start = async (tag: string, started?: () => void) => {
    const s = await serve(handlers(tag, started), address);
    servers.push(s);
    return s;
  };
  beforeEach(() => {
    path = tempSocket();
    address = `unix:${path}`;
    servers = [];
  });
  afterEach(async () => {
    for (const s of servers) s.destroy();
  });

  it('without reconnect nothing changes: a dropped connection closes the client, states() ends with closed', async () => {
    const server = await start('a');
    const client = await connect(address);
    const seen = record(client);
    assert.equal(client.state, 'open');
    server.destroy();
    const reason = await client.closed;
    assert.equal(reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal(client.state, 'closed');
    await rejectsWith(client.call('who'), 'IPCBOR_ERR_CONNECTION_CLOSED');
    await waitFor(() => seen.at(-1)?.state === 'closed', 'closed');
    assert.deepEqual(
      seen.map((c) => c.state),
      ['open', 'closed'],
    );
  });

  it('reconnects after the server restarts: a new hello, the same Subscription keeps delivering, the states are observable', async () => {
    const hung = deferred();
    const first = await start('first', () => hung.resolve());
    const client = await connect(address, { reconnect: FAST });
    const seen = record(client);
    const helloBefore = client.server;
    assert.ok(helloBefore);
    const got: unknown[] = [];
    const sub = client.subscribe('tick', (payload) => got.push(payload));
    await sub.ready;
    first.emit('tick', 1);
    await waitFor(() => got.length === 1, 'the first event');

    // A call in flight when the connection drops rejects, and is not sent again.
    const inflight = client.call('hang');
    await hung.promise;
    first.destroy();
    await rejectsWith(inflight, 'IPCBOR_ERR_CONNECTION_CLOSED');
    await waitFor(() => client.state === 'reconnecting' || client.state === 'connecting', 'reconnecting');

    const second = await start('second');
    await waitFor(() => client.state === 'open', 'open again', 10_000);
    assert.equal(await client.call('who'), 'second');
    assert.notEqual(client.server, helloBefore, 'the hello was made again');
    assert.equal(client.protocol, 'extended');
    assert.equal(sub.closed, false);
    await sub.ready;
    second.emit('tick', 2);
    await waitFor(() => got.length === 2, 'the event from the new server');
    assert.deepEqual(got, [1, 2]);

    const states = seen.map((c) => c.state);
    assert.equal(states[0], 'open');
    assert.ok(states.includes('reconnecting'));
    assert.ok(states.includes('connecting'));
    assert.equal(states.at(-1), 'open');
    const r = seen.find((c) => c.state === 'reconnecting')!;
    assert.equal(r.attempt, 1);
    assert.equal(r.error?.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.ok(r.delay !== undefined && r.delay >= 0 && r.delay <= FAST.initialDelay);

    await client.close();
    assert.equal(client.state, 'closed');
    assert.equal(sub.closed, true);
    await waitFor(() => seen.at(-1)?.state === 'closed', 'closed');
  });

  it('an iterating subscription is restored too, and unsubscribing while disconnected is not restored', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST });
    const kept = client.subscribe<number>('tick');
    const gone = client.subscribe<number>('tock');
    await Promise.all([kept.ready, gone.ready]);
    first.destroy();
    await waitFor(() => client.state !== 'open', 'disconnected');
    await gone.unsubscribe();
    const second = await start('second');
    await waitFor(() => client.state === 'open', 'open again', 10_000);
    await kept.ready;
    assert.equal(second.emit('tick', 7), 1);
    assert.equal(second.emit('tock', 8), 0, 'nobody subscribes tock any more');
    const it = kept[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, { name: 'tick', payload: 7 });
    await client.close();
    assert.equal((await it.next().catch((e: { code: string }) => e.code)) as unknown, 'IPCBOR_ERR_CONNECTION_CLOSED');
  });

  it("whileDisconnected 'fail' (the default): calls reject at once, notify throws", async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: { initialDelay: 50, maxDelay: 200 } });
    first.destroy();
    await waitFor(() => client.state !== 'open', 'disconnected');
    await rejectsWith(client.call('who'), 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.throws(() => client.notify('who'), { code: 'IPCBOR_ERR_CONNECTION_CLOSED' });
    await start('second');
    await waitFor(() => client.state === 'open', 'open again', 10_000);
    assert.equal(await client.call('who'), 'second');
    await client.close();
  });

  it("whileDisconnected 'wait': calls wait (bounded by maxQueued, their timeout and their signal) and are sent once reconnected", async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST, whileDisconnected: 'wait', maxQueued: 3 });
    first.destroy();
    await waitFor(() => client.state !== 'open', 'disconnected');
    const a = client.call('echo', { n: 1 });
    const b = client.call('echo', { n: 2 }, { timeout: 60_000 });
    const ac = new AbortController();
    const c = client.call('echo', { n: 3 }, { signal: ac.signal });
    await rejectsWith(client.call('echo', { n: 4 }), 'IPCBOR_ERR_OVERLOADED');
    assert.equal(client.inflight, 3);
    ac.abort();
    await rejectsWith(c, 'IPCBOR_ERR_CANCELLED');
    const t = client.call('echo', { n: 5 }, { timeout: 1 });
    await rejectsWith(t, 'IPCBOR_ERR_TIMEOUT');
    assert.equal(client.inflight, 2);
    await start('second');
    assert.deepEqual(await a, { n: 1 });
    assert.deepEqual(await b, { n: 2 });
    assert.equal(client.state, 'open');
    await client.close();
  });

  it('gives up after maxAttempts: closed resolves, waiting calls reject, subscriptions end', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: { initialDelay: 5, maxDelay: 20, maxAttempts: 3 }, whileDisconnected: 'wait' });
    const seen = record(client);
    const sub = client.subscribe('tick');
    await sub.ready;
    first.destroy();
    await waitFor(() => client.state !== 'open', 'disconnected');
    const waiting = client.call('who');
    const reason = await client.closed;
    assert.equal(reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal((reason.cause as { code?: string }).code, 'IPCBOR_ERR_CONNECT');
    assert.equal(client.state, 'closed');
    await rejectsWith(waiting, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal(sub.closed, true);
    await waitFor(() => seen.at(-1)?.state === 'closed', 'closed');
    assert.equal(seen.filter((c) => c.state === 'connecting').length, 3, 'three attempts');
    await rejectsWith(client.call('who'), 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.throws(() => client.subscribe('tick'), { code: 'IPCBOR_ERR_CONNECTION_CLOSED' });
  });

  it('close() and destroy() while reconnecting stop it: closed resolves, no later connection is made', async () => {
    for (const how of ['close', 'destroy'] as const) {
      const first = await start('first');
      const client = await connect(address, { reconnect: { initialDelay: 20, maxDelay: 50 }, whileDisconnected: 'wait' });
      first.destroy();
      await waitFor(() => client.state !== 'open', 'disconnected');
      const waiting = client.call('who');
      if (how === 'close') await client.close();
      else client.destroy();
      assert.equal((await client.closed).code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      assert.equal(client.state, 'closed');
      await rejectsWith(waiting, 'IPCBOR_ERR_CONNECTION_CLOSED');
      const second = await start('second');
      await sleep(150);
      assert.equal(second.connections, 0, `${how}: no reconnect after it`);
      second.destroy();
    }
  });

  it('close() while open does not reconnect', async () => {
    const server = await start('a');
    const client = await connect(address, { reconnect: FAST });
    const seen = record(client);
    await client.close();
    // The server sees it go (waited for), and no connection comes back
    // within several reconnection delays (FAST: 20-100 ms).
    await waitFor(() => server.connections === 0, 'the server to see the client go');
    await sleep(5 * FAST.maxDelay);
    assert.equal(server.connections, 0);
    assert.deepEqual(
      seen.map((c) => c.state),
      ['open', 'closing', 'closed'],
    );
  });

  it('subscribing while disconnected registers on the next connection', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST });
    first.destroy();
    await waitFor(() => client.state !== 'open', 'disconnected');
    const got: unknown[] = [];
    const sub = client.subscribe('tick', (p) => got.push(p));
    const second = await start('second');
    await sub.ready;
    second.emit('tick', 'x');
    await waitFor(() => got.length === 1, 'the event');
    await client.close();
  });

  it('a subscription the new server refuses ends with its error; the others are restored', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST });
    const refused = client.subscribe('tick');
    const kept = client.subscribe('other');
    await Promise.all([refused.ready, kept.ready]);
    first.destroy();
    await waitFor(() => client.state !== 'open', 'disconnected');
    const svc = defineService({ name: 'svc', version: '1.0.0', methods: { who: method({ handler: () => 'svc' }) }, events: { other: null } });
    const second = await serve(svc, address);
    servers.push(second);
    await waitFor(() => client.state === 'open', 'open again', 10_000);
    await rejectsWith(refused.ready, 'IPCBOR_ERR_UNKNOWN_EVENT');
    assert.equal(refused.closed, true);
    await assert.rejects(refused[Symbol.asyncIterator]().next(), { code: 'IPCBOR_ERR_UNKNOWN_EVENT' });
    await kept.ready;
    assert.equal(kept.closed, false);
    await client.close();
  });

  /** A failed attempt (not the drop itself) that ended with `code`. */
  const failedWith = (seen: ClientStateChange[], code: string) => seen.some((c) => c.state === 'reconnecting' && (c.attempt ?? 0) >= 2 && c.error?.code === code);

  it('subscriptions outlive a server over maxConnections (refused, then closed unanswered) and are restored once it serves again', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST });
    const seen = record(client);
    const got: unknown[] = [];
    const sub = client.subscribe('tick', (p) => got.push(p));
    await sub.ready;
    first.destroy();
    // The same path, now a server that takes no connection at all.
    const full = await serve(handlers('full'), address, { maxConnections: 0 });
    servers.push(full);
    // Refused: its hello is answered IPCBOR_ERR_OVERLOADED.
    await waitFor(() => failedWith(seen, 'IPCBOR_ERR_OVERLOADED') || sub.closed, 'an attempt refused', 10_000);
    // Hold all its refusals (raw sockets that send nothing, replaced as the
    // server cuts them): past them it closes a connection unanswered.
    let holding = true;
    const holders = new Set<Socket>();
    const hold = (): void => {
      if (!holding) return;
      rawConnect(address).then(
        (s) => {
          holders.add(s);
          s.on('error', () => {});
          s.on('close', () => {
            holders.delete(s);
            hold();
          });
        },
        () => hold(),
      );
    };
    for (let i = 0; i < REFUSING_MAX; i++) hold();
    await waitFor(() => failedWith(seen, 'IPCBOR_ERR_CONNECTION_CLOSED') || sub.closed, 'an attempt closed unanswered', 20_000);
    assert.equal(sub.closed, false, 'a close without a word does not end the subscriptions');
    holding = false;
    for (const s of holders) s.destroy();
    full.destroy();

    const second = await start('second');
    await waitFor(() => client.state === 'open', 'open again', 10_000);
    assert.equal(client.protocol, 'extended');
    await sub.ready;
    assert.equal(second.emit('tick', 2), 1, 'the subscription is registered again');
    await waitFor(() => got.includes(2), 'the event from the server that serves again');
    await client.close();
  });

  it('subscriptions outlive a server that accepts and drops every connection, and are restored once a real one is back', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST });
    const seen = record(client);
    const sub = client.subscribe<number>('tick');
    await sub.ready;
    first.destroy();
    rmSync(path, { force: true });
    let dropped = 0;
    const dropper = createServer((s) => {
      dropped++;
      s.destroy();
    });
    await new Promise<void>((r) => dropper.listen(path, r));
    await waitFor(() => (failedWith(seen, 'IPCBOR_ERR_CONNECTION_CLOSED') && dropped >= 3) || sub.closed, 'attempts dropped unanswered', 10_000);
    assert.equal(sub.closed, false, 'a close without a word does not end the subscriptions');
    assert.equal(client.protocol, 'extended', 'nor makes the client take the server for a base-framing peer');
    await new Promise<void>((r) => dropper.close(() => r()));
    rmSync(path, { force: true });

    const second = await start('second');
    await waitFor(() => client.state === 'open', 'open again', 10_000);
    await sub.ready;
    assert.equal(second.emit('tick', 3), 1);
    const next = await sub[Symbol.asyncIterator]().next();
    assert.deepEqual(next.value, { name: 'tick', payload: 3 });
    await client.close();
  });

  it('a server that answers the hello as a base-framing peer still ends the subscriptions, with IPCBOR_ERR_NOT_SUPPORTED', async () => {
    const first = await start('first');
    const client = await connect(address, { reconnect: FAST });
    const sub = client.subscribe('tick');
    await sub.ready;
    first.destroy();
    rmSync(path, { force: true });
    const base = createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => {
        for (const p of encodeErrorResponse('unknown method: $ipcbor.hello')) s.write(p);
      });
    });
    await new Promise<void>((r) => base.listen(path, r));
    try {
      await assert.rejects(sub[Symbol.asyncIterator]().next(), { code: 'IPCBOR_ERR_NOT_SUPPORTED' });
      await waitFor(() => client.state === 'open', 'open, in the base framing');
      assert.equal(client.protocol, 'base');
    } finally {
      client.destroy();
      base.close();
    }
  });

  it('refuses bad options with a RangeError', async () => {
    await start('a');
    await assert.rejects(connect(address, { reconnect: { factor: 0.5 } }), RangeError);
    await assert.rejects(connect(address, { reconnect: { jitter: 2 } }), RangeError);
    await assert.rejects(connect(address, { reconnect: true, whileDisconnected: 'maybe' as 'wait' }), RangeError);
  });
});

describe('backoff', () => {
  it('grows by factor up to maxDelay, with full jitter by default, exact with jitter 0', () => {
    const p = { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 1, maxAttempts: Infinity };
    for (let n = 1; n <= 10; n++) {
      const cap = Math.min(1000, 100 * 2 ** (n - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(p, n);
        assert.ok(d >= 0 && d <= cap, `attempt ${n}: ${d} within [0, ${cap}]`);
      }
      assert.equal(backoffDelay({ ...p, jitter: 0 }, n), cap);
    }
  });
});
