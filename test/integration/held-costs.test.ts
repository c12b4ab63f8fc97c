/**
 * What a held call really costs, measured, against what it is charged.
 *
 * A peer that pipelines tiny calls makes the server hold objects, not
 * bytes: a call, its context, its place in the call table or a queue, the
 * reactions to its handler's promise, the event loop's message. The budget
 * bounds them only if each is charged at least what it holds. Here, for the
 * usual server (an async handler still pending), the lazy server (calls
 * parked, the application has not polled) and the event loop (messages not
 * taken), in both framings: thousands of calls are held, and the heap and
 * buffers they add (after GC) are compared with what the server's budget
 * says it holds for them.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, it } from 'node:test';
import { createLoop, serve, serveLazy } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended, encodeRequest } from '../../src/core/frame/encoder.js';
import { budgetAudit, decodedBytes, type ServerBudget } from '../../src/core/peer/budget.js';
import { waitFor } from '../extended-helpers.js';
import { rawConnect, tempSocket } from '../helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function live(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const CONNECTIONS = 4;
const CALLS = 1500;
/** Nothing bounds the calls here but what they are charged. */
const OPTIONS = { maxConnectionBytes: 1 << 30, maxServerBytes: 1 << 30, maxInflight: 1 << 20 };

async function hello(s: Socket): Promise<void> {
  s.write(Buffer.concat(encodeRequest('$ipcbor.hello', cbor.encode({ version: 1, maxFrameBytes: 1 << 24, window: 64 }))));
  let got = 0;
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= 8) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
  });
}

/** Each connection sends CALLS calls of `hold` with a small map as params, in one write. */
function calls(framing: 'extended' | 'base'): Buffer {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < CALLS; i++) {
    const p = cbor.encode({ i, tag: 'x' });
    parts.push(...(framing === 'extended' ? encodeExtended(cbor.encode([1, i + 1, 'hold']), p) : encodeRequest('hold', p)));
  }
  return Buffer.concat(parts);
}

type Mode = 'serve' | 'lazy' | 'loop';

async function measure(mode: Mode, framing: 'extended' | 'base'): Promise<{ measured: number; charged: number }> {
  const budgets = new Set<ServerBudget>();
  budgetAudit.servers = budgets;
  const pending: (() => void)[] = [];
  const address = `unix:${tempSocket()}`;
  let close: () => Promise<void>;
  let held: () => number;
  try {
    if (mode === 'serve') {
      const server = await serve({ hold: () => new Promise<void>((r) => pending.push(r)) }, address, OPTIONS);
      close = () => server.close();
      held = () => pending.length;
    } else if (mode === 'lazy') {
      const server = await serveLazy({ hold: () => null }, address, OPTIONS);
      close = () => server.close();
      held = () => server.pending;
    } else {
      const loop = createLoop(OPTIONS);
      await loop.serve(address);
      close = () => loop.close();
      // The loop's first events are the connections themselves.
      held = () => loop.pending - CONNECTIONS;
    }
  } finally {
    budgetAudit.servers = undefined;
  }
  const [budget] = budgets;
  assert.ok(budget, 'the server made a budget');
  const sockets: Socket[] = [];
  const frames = calls(framing);
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = await rawConnect(address);
      s.on('error', () => {});
      sockets.push(s);
      if (framing === 'extended') await hello(s);
    }
    const base = live();
    const chargedBefore = budget.held;
    for (const s of sockets) s.write(frames);
    const n = CONNECTIONS * CALLS;
    await waitFor(() => held() === n, `${n} calls to be held (${held()})`, 20_000);
    const measured = (live() - base) / n;
    const charged = (budget.held - chargedBefore) / n;
    return { measured, charged };
  } finally {
    for (const r of pending) r();
    for (const s of sockets) s.destroy();
    await close();
  }
}

describe('a held call is charged at least what it holds', () => {
  for (const mode of ['serve', 'lazy', 'loop'] as const) {
    for (const framing of ['extended', 'base'] as const) {
      it(`${mode}, ${framing} framing`, async () => {
        const { measured, charged } = await measure(mode, framing);
        console.log(`# held call ${JSON.stringify({ mode, framing, measuredBytes: Math.round(measured), chargedBytes: Math.round(charged) })}`);
        assert.ok(measured > 0, 'holding calls costs memory (the measurement sees them)');
        assert.ok(measured <= charged, `${mode}/${framing}: a held call holds ${Math.round(measured)} bytes and is charged ${Math.round(charged)}`);
      });
    }
  }
});

describe('a decoded value is charged at least what it holds', () => {
  // The shapes a peer would pick to make the most objects of the fewest
  // bytes, and the common ones. Each is decoded and kept; the heap it adds
  // is compared with its wire bytes plus decodedBytes().
  const N = 100_000;
  const shapes: Record<string, () => unknown[]> = {
    'small integers': () => Array.from({ length: N }, (_, i) => i),
    floats: () => Array.from({ length: N }, (_, i) => i + 0.5),
    'short strings': () => Array.from({ length: N }, (_, i) => `k${i % 1000}`),
    'empty byte strings': () => Array.from({ length: N }, () => new Uint8Array(0)),
    'empty arrays': () => Array.from({ length: N }, () => []),
    'empty maps': () => Array.from({ length: N }, () => ({})),
    'maps of one key': () => Array.from({ length: N }, (_, i) => ({ [`k${i}`]: i })),
    'large integers': () => Array.from({ length: N }, (_, i) => 2n ** 63n + BigInt(i)),
  };
  for (const [name, make] of Object.entries(shapes)) {
    it(name, () => {
      const bytes = cbor.encode(make());
      const base = live();
      const value = cbor.decode(bytes);
      const measured = live() - base;
      const charged = bytes.length + decodedBytes(cbor);
      assert.equal((value as unknown[]).length, N);
      console.log(`# decoded ${JSON.stringify({ shape: name, measuredPerItem: +(measured / N).toFixed(1), chargedPerItem: +(charged / N).toFixed(1) })}`);
      assert.ok(measured <= charged, `${name}: ${measured} bytes held, ${charged} charged`);
    });
  }
});

describe('an event queued for a slow subscriber is charged at least what it holds', () => {
  it('small events, each its own payload, behind a subscriber that reads nothing', async () => {
    const budgets = new Set<ServerBudget>();
    budgetAudit.servers = budgets;
    const address = `unix:${tempSocket()}`;
    const N = 20_000;
    const server = await serve({ version: () => 1 }, address, { ...OPTIONS, eventQueue: 1 << 20, eventQueueBytes: 1 << 30 });
    budgetAudit.servers = undefined;
    const [budget] = budgets;
    const s = await rawConnect(address);
    s.on('error', () => {});
    try {
      await hello(s);
      s.write(Buffer.concat(encodeExtended(cbor.encode([1, 1, '$ipcbor.subscribe']), cbor.encode({ event: 'tick' }))));
      await waitFor(() => budget!.held === 0 && server.connections === 1, 'the subscription');
      s.pause();
      // Fill the socket until the server's writes back up (its budget then holds the unsent bytes).
      const big = new Uint8Array(256 * 1024);
      for (let i = 0; i < 64 && budget!.held < 1 << 20; i++) {
        server.emit('tick', big);
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => budget!.held >= 1 << 20, 'the subscriber to back up');
      const base = live();
      const before = budget!.held;
      for (let i = 0; i < N; i++) server.emit('tick', { i });
      const measured = (live() - base) / N;
      const charged = (budget!.held - before) / N;
      console.log(`# queued event ${JSON.stringify({ measuredBytes: Math.round(measured), chargedBytes: Math.round(charged) })}`);
      assert.ok(measured > 0, 'the events are held');
      assert.ok(measured <= charged, `a queued event holds ${Math.round(measured)} bytes and is charged ${Math.round(charged)}`);
    } finally {
      s.destroy();
      await server.close();
    }
  });
});
