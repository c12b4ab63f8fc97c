/**
 * Load: 1,000 concurrent connections to one server (in a child process),
 * half of them base-framed and half extended, each with 20 echo calls
 * pipelined at once with payloads of its own. Every answer must match its
 * request (nothing lost, nothing swapped between calls or connections),
 * and on the base framing the answers of a connection arrive in request
 * order. Runs over every transport of transports.ts (unix socket now; TLS
 * joins when it lands).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { sleep, type ChildServer } from '../attack/harness.js';
import { connect, openMany, TRANSPORTS } from './transports.js';

const CONNECTIONS = 1000;
const CALLS = 20;

const children: ChildServer[] = [];
after(async () => {
  await Promise.all(children.map((c) => c.kill()));
});

/** The params of call `i` of connection `c`: distinct, with a payload of varying size. */
function params(c: number, i: number): { c: number; i: number; tag: string; pad: Uint8Array } {
  const pad = new Uint8Array(((c * 31 + i * 17) % 200) + 1).fill((c + i) & 0xff);
  return { c, i, tag: `${c}/${i}`, pad };
}

for (const transport of TRANSPORTS) {
  describe(`load over ${transport.name}`, { skip: transport.skip }, () => {
    it(`${CONNECTIONS} concurrent connections, ${CALLS} pipelined calls each: nothing lost or reordered`, async () => {
      const server = await transport.start();
      children.push(server.child);
      const t0 = performance.now();
      const { clients, retries } = await openMany(CONNECTIONS, (i) => connect(server.address, { ...server.connectOptions, protocol: i % 2 === 0 ? 'base' : 'auto' }));
      const opened = performance.now() - t0;
      try {
        assert.equal(clients.filter((c) => c.protocol === 'base').length, CONNECTIONS / 2);
        assert.equal(clients.filter((c) => c.protocol === 'extended').length, CONNECTIONS / 2);
        // Every connection is held by the server at once.
        const probe = clients[1]!;
        assert.equal(await probe.call('conns'), CONNECTIONS);

        const t1 = performance.now();
        let wrong = 0;
        let outOfOrder = 0;
        await Promise.all(
          clients.map(async (client, c) => {
            const order: number[] = [];
            const answers = await Promise.all(
              Array.from({ length: CALLS }, (_, i) =>
                client.call<ReturnType<typeof params>>('echo', params(c, i)).then((r) => {
                  order.push(i);
                  return r;
                }),
              ),
            );
            for (const [i, r] of answers.entries()) {
              const want = params(c, i);
              if (r.c !== c || r.i !== i || r.tag !== want.tag || Buffer.compare(Buffer.from(r.pad), Buffer.from(want.pad)) !== 0) wrong++;
            }
            // The base framing has no ids: answers come back in request order, and the client matches them so.
            if (client.protocol === 'base' && order.some((v, k) => v !== k)) outOfOrder++;
          }),
        );
        const ms = performance.now() - t1;
        console.log(`# load ${JSON.stringify({ transport: transport.name, connections: CONNECTIONS, calls: CONNECTIONS * CALLS, openMs: Math.round(opened), connectRetries: retries, callsMs: Math.round(ms), callsPerSecond: Math.round((CONNECTIONS * CALLS) / (ms / 1000)) })}`);
        assert.equal(wrong, 0, 'every answer matches its request');
        assert.equal(outOfOrder, 0, 'base-framing answers come in request order');
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
      // The server lets go of every connection.
      const check = await connect(server.address, server.connectOptions);
      try {
        let conns = await check.call<number>('conns');
        for (let k = 0; k < 100 && conns !== 1; k++) {
          await sleep(50);
          conns = await check.call<number>('conns');
        }
        assert.equal(conns, 1, 'only the checking connection is left');
      } finally {
        check.destroy();
      }
    });
  });
}
