/**
 * Run-time side of the typed edges: a client naming a service (by its own
 * name, or a mount's prefix) on a socket that serves several; the lazy
 * server handing its App to handlers that declare it; events through a
 * service type imported as a type only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, defineService, method, serve, serveLazy, serviceOf } from '../../src/index.js';
import type { admin as Admin, clock as Clock } from '../types/service-name-defs.js';
import { admin, clock, simAdmin, type Sim } from '../types/service-name-defs.js';
import { tempSocket } from '../helpers.js';

describe('client.service and client.events by name', () => {
  it('on a socket with several services: the name reaches the service, bare names the default, { prefix } a mount', async () => {
    const other = defineService({ name: 'other', version: '1', methods: { now: method({ handler: () => -1 }) } });
    await using server = await serve([other, clock, { service: admin, prefix: 'admin2' }], `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    assert.equal(await client.service<typeof Clock>('clock').now(), 0);
    assert.equal(await client.service<typeof Clock>().now(), -1, 'bare names: the default service (other)');
    assert.equal(await client.service<typeof Admin>({ prefix: 'admin2' }).reload({ force: true }), true);
    const ticks = client.events<typeof Clock>('clock').subscribe('tick');
    await ticks.ready;
    serviceOf(clock).emit('tick', { at: 7 });
    for await (const ev of ticks) {
      assert.deepEqual(ev, { name: 'clock.tick', payload: { at: 7 } });
      break;
    }
  });
});

describe('the lazy server hands its App to the handlers', () => {
  it('ctx.app is what handleNewMessages got, in a service and in inline handlers', async () => {
    const svc = simAdmin;
    const state: Sim = { speed: 1 };
    await using server = await serveLazy<Sim>(svc, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const answer = client.call('set', { speed: 3 });
    await server.nextMessage();
    assert.equal(server.handleNewMessages(state), 1);
    assert.deepEqual(await answer, { speed: 3 });
    assert.equal(state.speed, 3);

    await using inline = await serveLazy<Sim>({ speed: (_p: unknown, ctx) => ctx.app.speed * 2 }, `unix:${tempSocket()}`);
    await using c2 = await connect(inline.addresses[0]!);
    const doubled = c2.call('speed');
    await inline.nextMessage();
    assert.equal(await inline.handleNewMessagesAsync({ speed: 21 }), 1);
    assert.equal(await doubled, 42);
  });
});
