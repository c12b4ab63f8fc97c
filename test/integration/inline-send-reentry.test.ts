/**
 * A server answering many pipelined calls in one tick sends its answers 16
 * at a time from inside the write of the 16th. Bytes leaving release
 * budget, and a release wakes the connection: were that to happen inside
 * the write, frames the budget had held back (a CANCEL, new calls) would
 * run in the middle of another call's completion. Here a client over its
 * budget has cancelled calls whose CANCELs wait behind held frames: no
 * handler may be aborted while its own answer is being written.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { connect, defineService, method, serve } from '../../src/index.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { ServerConnection } from '../../src/core/server/connection.js';
import { tempSocket } from '../helpers.js';

/** The calls whose answers ServerConnection.complete is writing right now. */
const completing: { ctx: { signal: AbortSignal } }[] = [];
const complete = ServerConnection.prototype.complete;
ServerConnection.prototype.complete = function (this: ServerConnection, ...args: Parameters<typeof complete>) {
  completing.push(args[0] as unknown as { ctx: { signal: AbortSignal } });
  try {
    return complete.apply(this, args);
  } finally {
    completing.pop();
  }
};

it('no frame runs inside a write: a handler is never aborted while its own answer is being written', async () => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const answer = new Uint8Array(2048);
  let abortedWhileAnswering = 0;
  let aborted = 0;
  const svc = defineService({
    name: 'reentry',
    version: '1.0.0',
    methods: {
      work: method({
        handler: async (_p: unknown, ctx: CallContext) => {
          ctx.signal.addEventListener('abort', () => {
            aborted++;
            if (completing.some((c) => c.ctx.signal === ctx.signal)) abortedWhileAnswering++;
          });
          await gate;
          return answer;
        },
      }),
    },
  });
  const addr = `unix:${tempSocket()}`;
  // A small budget: the 80 calls' 2 KiB answers put the connection over it, so the frames behind them (the CANCELs) are held.
  const server = await serve(svc, addr, { maxConnectionBytes: 64 * 1024 });
  const client = await connect(addr);
  try {
    const acs = Array.from({ length: 80 }, () => new AbortController());
    const all = Promise.allSettled(acs.map((ac, n) => client.call('work', { n }, { signal: ac.signal })));
    await new Promise((resolve) => setImmediate(resolve));
    for (const ac of acs) ac.abort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    open();
    const settled = await all;
    assert.ok(settled.every((r) => r.status === 'rejected'), 'every call was cancelled on the client');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(abortedWhileAnswering, 0, 'handlers were aborted while their own answer was being written');
    assert.ok(aborted <= acs.length);
  } finally {
    await client.close();
    await server.close();
  }
});
