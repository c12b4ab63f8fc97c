/**
 * Fuzzing the client: a malicious server (a raw `net` server in this test)
 * answers a real `connect()` client with random and mutated bytes: a hello
 * answer that is valid, mutated, garbage, an error or a close; then base
 * responses or extended frames of every kind (RESULT, ERROR, ITEM, END,
 * CREDIT, EVENT, CANCEL, unknown kinds) for the ids in flight and others,
 * mutated; then it closes the connection (a reset, a half-close, or after a
 * while). Whatever it sends, the client must throw nothing uncaught, reject
 * only with IpcborErrors, see its connection close, and settle every call,
 * result stream and subscription once it has.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, IpcborError, type Client } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { sleep } from '../attack/harness.js';
import { tempSocket } from '../helpers.js';
import { textArb, valueArb } from '../unit/codec-arbitraries.js';
import { fc, joinWire, mutate, mutationsArb, runs, split, splitsArb, wire, type Wire } from './fuzz.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
};
const encodeOr = (v: unknown, fallback: Uint8Array): Uint8Array => {
  try {
    return Uint8Array.from(cbor.encode(v));
  } catch {
    return fallback;
  }
};

/** A base-framing response `[i32 ret][u32 len][body]`. */
const response = (ret: number, body: Uint8Array): Wire => wire(Buffer.concat([i32(ret), u32(body.length), body]), [4]);
/** An extended frame `[u32 len][head][u32 len][payload]`. */
const frame = (head: Uint8Array, payload: Uint8Array): Wire => wire(Buffer.concat([u32(head.length), head, u32(payload.length), payload]), [0, 4 + head.length]);

const bodyArb = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(valueArb, fc.uint8Array({ maxLength: 8 })).map(([v, b]) => encodeOr(v, b)) },
  fc.constant(new Uint8Array()),
  fc.uint8Array({ maxLength: 64 }),
  textArb.map((t) => Buffer.from(t, 'utf8')),
  // Over the client's maxFrameBytes (64 KiB) sometimes.
  fc.integer({ min: 1, max: 100 * 1024 }).map((n) => encodeOr(new Uint8Array(n), new Uint8Array())),
);

const baseResponseArb: fc.Arbitrary<Wire> = fc.tuple(fc.oneof(fc.constantFrom(0, 0, 1, -1), fc.integer()), bodyArb).map(([ret, body]) => response(ret, body));

/** The client's ids are 1, 2, 3…: aim there mostly. */
const idArb: fc.Arbitrary<unknown> = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 6 }) }, fc.constantFrom<unknown>(0, -1, 2 ** 32, 1.5, 'x', null, 2n ** 64n - 1n), fc.nat());
const nameArb = fc.oneof(fc.constantFrom('tick', 'tock', '*', ''), textArb);
const serverHeadArb: fc.Arbitrary<unknown[]> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constant(4), idArb).map((h) => [...h]) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(5), idArb, fc.constantFrom('IPCBOR_ERR_INTERNAL', 'IPCBOR_ERR_OVERLOADED', 'X'), textArb).map((h) => [...h]) },
  { weight: 3, arbitrary: fc.tuple(fc.constant(6), idArb).map((h) => [...h]) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(7), idArb).map((h) => [...h]) },
  fc.tuple(fc.constant(8), idArb, fc.oneof(fc.nat(100), fc.constantFrom<unknown>(-1, 2 ** 32, 'x'))).map((h) => [...h]),
  { weight: 3, arbitrary: fc.tuple(fc.constant(9), nameArb).map((h) => [...h]) },
  fc.tuple(fc.constant(9), nameArb, fc.oneof(fc.nat(10), fc.constantFrom<unknown>(-1, 'x', 2 ** 53)), nameArb).map((h) => [...h]),
  fc.tuple(fc.constant(3), idArb).map((h) => [...h]),
  fc.tuple(fc.constantFrom(1, 2, 0, 10, 255), idArb, textArb).map((h) => [...h]),
  fc.array(valueArb, { maxLength: 4 }),
);
const serverFrameArb: fc.Arbitrary<Wire> = fc
  .tuple(fc.oneof({ weight: 9, arbitrary: serverHeadArb.map((h) => encodeOr(h, new Uint8Array([0x80]))) }, fc.uint8Array({ maxLength: 16 })), bodyArb)
  .map(([h, p]) => frame(h, p));

/** The hello answer: valid, with odd values, garbage, an error (a base-framing peer), or none (a close). */
const helloAnswerArb: fc.Arbitrary<Wire | 'close'> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record({ maxInflight: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constantFrom<unknown>(undefined, 0, -1, 'x', 2n ** 64n - 1n)), window: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom<unknown>(0, 2 ** 32)) })
      .map(({ maxInflight, window }) => response(0, encodeOr({ version: 1, maxFrameBytes: 64 * 1024, window, ...(maxInflight === undefined ? {} : { maxInflight }), server: 'evil' }, new Uint8Array([0xa0])))),
  },
  fc.record({ version: fc.oneof(fc.constantFrom<unknown>(0, 1, 2, -1, 'x'), fc.nat()), maxFrameBytes: fc.oneof(fc.constantFrom<unknown>(0, 1, 2n ** 64n - 1n, 'x'), fc.nat()), refused: fc.oneof(fc.constant(undefined), fc.record({ code: textArb, message: textArb }), valueArb) }, { requiredKeys: [] }).map((v) => response(0, encodeOr(v, new Uint8Array([0xa0])))),
  baseResponseArb,
  fc.constant<'close'>('close'),
);

interface Case {
  protocol: 'auto' | 'base' | 'extended';
  hello: Wire | 'close';
  /** Base-framing responses or extended frames (the client reads them in its framing, whatever they are). */
  frames: Wire[];
  mutations: Parameters<typeof mutate>[1];
  splits: number[];
  /** How the server leaves: a reset, a half-close (FIN), or a reset after a pause. */
  close: 'destroy' | 'end' | 'later';
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  protocol: fc.constantFrom<Case['protocol']>('auto', 'auto', 'base', 'extended'),
  hello: helloAnswerArb,
  frames: fc.oneof(fc.array(serverFrameArb, { maxLength: 8 }), fc.array(baseResponseArb, { maxLength: 6 })),
  mutations: mutationsArb,
  splits: splitsArb,
  close: fc.constantFrom<Case['close']>('destroy', 'end', 'later'),
});

let current: Case | undefined;
const serverSockets = new Set<Socket>();
const path = tempSocket();
const evil = createServer((s) => {
  serverSockets.add(s);
  s.on('close', () => serverSockets.delete(s));
  s.on('error', () => {});
  const c = current;
  if (!c) return void s.destroy();
  let stage: 'first' | 'calls' | 'done' = 'first';
  const finish = () => {
    if (stage === 'done' || s.destroyed) return;
    stage = 'done';
    for (const chunk of split(mutate(joinWire(c.frames), c.mutations), c.splits)) s.write(chunk);
    if (c.close === 'destroy') s.destroy();
    else if (c.close === 'end') s.end();
    else setTimeout(() => s.destroy(), 30);
  };
  s.on('data', (d: Buffer) => {
    if (stage === 'first') {
      if (d.length >= 17 && d.subarray(4, 17).toString('latin1') === '$ipcbor.hello') {
        if (c.hello === 'close') return void s.destroy();
        s.write(c.hello.bytes);
        stage = 'calls';
        // The client's calls, if it makes any, come next; answer them or not, in 50 ms we go on.
        setTimeout(finish, 50);
        return;
      }
      finish();
    } else if (stage === 'calls') {
      finish();
    }
  });
  // A client that sends nothing (it gave up) still gets the script.
  setTimeout(finish, 200);
});

const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
before(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  await new Promise<void>((r) => evil.listen(path, r));
});
after(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  for (const s of serverSockets) s.destroy();
  evil.close();
});

const SETTLE_MS = 5000;

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/** How `p` settles (a handler attached at once: a rejection is never unhandled). */
const outcomeOf = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    (value): Outcome => ({ ok: true, value }),
    (err: unknown): Outcome => ({ ok: false, err }),
  );

/** Resolves with how `p` settled, or undefined if it did not within `ms`. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<Outcome | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([outcomeOf(p), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  clearTimeout(timer);
  return outcome;
}

function assertTyped(o: Outcome, what: string): void {
  if (!o.ok) assert.ok(o.err instanceof IpcborError, `${what} rejects with an IpcborError, not ${String(o.err)}`);
}

/** Read an async iterable to its end (or its error); undefined if it did not end within `ms`. */
async function drain(it: AsyncIterable<unknown>, ms: number): Promise<Outcome | undefined> {
  return settleWithin(
    (async () => {
      let n = 0;
      for await (const _ of it) n++;
      return n;
    })(),
    ms,
  );
}

async function runClientCase(c: Case): Promise<'connected' | 'refused'> {
  current = c;
  let client: Client;
  try {
    client = await connect(`unix:${path}`, { protocol: c.protocol, connectTimeout: 3000, maxFrameBytes: 64 * 1024, window: 4, eventQueue: 4, eventQueueBytes: 4096, maxConnectionBytes: 256 * 1024 });
  } catch (err) {
    assert.ok(err instanceof IpcborError, `connect rejects with an IpcborError, not ${String(err)}`);
    return 'refused';
  }
  try {
    const calls = [client.call('echo', { i: 1 }), client.call('stream', { n: 3 }), client.call('echo', { i: 2 }), client.call('slow', {}, { timeout: 60_000 }), client.call('echo', { i: 3 })].map(outcomeOf);
    client.notify('log', { line: 'x' });
    let sub: AsyncIterable<unknown> | undefined;
    let ready: Promise<Outcome> = Promise.resolve({ ok: true, value: undefined });
    try {
      const s = client.subscribe('tick');
      sub = s;
      ready = outcomeOf(s.ready);
    } catch (err) {
      assert.ok(err instanceof IpcborError, 'subscribe throws only IpcborErrors');
    }
    const subDone = sub ? drain(sub, SETTLE_MS + 1000) : Promise.resolve<Outcome>({ ok: true, value: 0 });
    // The server always closes: the client sees it.
    const closed = await settleWithin(client.closed, SETTLE_MS);
    assert.ok(closed?.ok, 'the client sees its connection close');
    assert.equal(client.state, 'closed');
    const outcomes = await Promise.all(calls.map((p) => settleWithin(p, SETTLE_MS)));
    for (const [i, settled] of outcomes.entries()) {
      assert.ok(settled, `call ${i} settled once the connection closed`);
      const o = settled.ok ? (settled.value as Outcome) : settled;
      assertTyped(o, `call ${i}`);
      // A result that is a stream ends (or fails) too.
      if (o.ok && o.value !== null && typeof o.value === 'object' && Symbol.asyncIterator in o.value) {
        const d = await drain(o.value as AsyncIterable<unknown>, SETTLE_MS);
        assert.ok(d, `the result stream of call ${i} ended once the connection closed`);
        assertTyped(d, `the result stream of call ${i}`);
      }
    }
    const r = await settleWithin(ready, SETTLE_MS);
    assert.ok(r?.ok, 'the subscription settled');
    assertTyped(r.value as Outcome, 'the subscription');
    const sd = await subDone;
    assert.ok(sd, 'the subscription ended once the connection closed');
    assertTyped(sd, 'the subscription');
    // After the close: calls fail at once, close() and destroy() are safe.
    const late = await settleWithin(client.call('echo', {}), SETTLE_MS);
    assert.ok(late && !late.ok, 'a call after the close is rejected');
    assertTyped(late, 'a call after the close');
    await client.close();
    return 'connected';
  } finally {
    client.destroy();
  }
}

describe('fuzz: the client against a malicious server', () => {
  it('random and mutated answers: nothing uncaught, every call, stream and subscription settles', async () => {
    let cases = 0;
    const outcomes = { connected: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        cases++;
        outcomes[await runClientCase(c)]++;
        // Whatever was thrown late (a microtask, a timer) shows up by now.
        await sleep(1);
        assert.deepEqual(uncaught, [], 'nothing thrown uncaught');
      }),
      runs(300),
    );
    console.log(`# fuzz ${JSON.stringify({ property: 'client: malicious server', cases, ...outcomes })}`);
  });
});
