/**
 * What the protocol fuzzers share: how many cases to run (a short run in
 * `npm test`, a long one with `npm run fuzz`), the server in a child
 * process with small budgets, the frames (base and extended) as arbitraries
 * with their length fields known, byte-level mutations, one case run over a
 * raw socket with everything the server sends checked against the wire
 * contract, and the checks after each case (a probe client is still
 * answered, the server's memory is within the resource model's bound).
 *
 * Environment:
 *   IPCBOR_FUZZ_RUNS   cases per property (default: each property's short count)
 *   IPCBOR_FUZZ_TIME   ms per property at most (default: none; npm run fuzz sets it)
 *   IPCBOR_FUZZ_SEED   replay a run (fast-check prints the seed and path of a failure)
 *   IPCBOR_FUZZ_PATH   with the seed, replay only the failing case
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { connect, IpcborError, type Client } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { encodeExtended, encodeRequest } from '../../src/core/frame/encoder.js';
import { boundFor, held, mb, MiB, sleep, startServer, type ChildServer, type Mem } from '../attack/harness.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { textArb, valueArb } from '../unit/codec-arbitraries.js';

export { fc };

const env = process.env;

/** Budgets small enough that a leak or an unbounded buffer shows. */
export const LIMITS = { maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB, maxFrameBytes: 1 * MiB, frameTimeout: 1000 };

export const FUZZ_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'fuzz-server.js');

/** fast-check parameters for a property whose short run is `short` cases. */
export function runs(short: number): fc.Parameters<unknown> {
  const numRuns = env.IPCBOR_FUZZ_RUNS ? Number(env.IPCBOR_FUZZ_RUNS) : short;
  return {
    numRuns,
    includeErrorInReport: true,
    ...(env.IPCBOR_FUZZ_TIME ? { interruptAfterTimeLimit: Number(env.IPCBOR_FUZZ_TIME) } : {}),
    ...(env.IPCBOR_FUZZ_SEED ? { seed: Number(env.IPCBOR_FUZZ_SEED) } : {}),
    ...(env.IPCBOR_FUZZ_PATH ? { path: env.IPCBOR_FUZZ_PATH } : {}),
  };
}

// ---- values and frames ----------------------------------------------------------

/** CBOR bytes of a value; a value the encoder refuses becomes its own bytes of garbage. */
function encodeOr(value: unknown, fallback: Uint8Array): Uint8Array {
  try {
    return Uint8Array.from(cbor.encode(value));
  } catch {
    return fallback;
  }
}

export const METHODS = ['version', 'echo', 'greet', 'slow', 'hang', 'stream', 'fire', 'sum', 'fail', 'mem', 'conns', 'nope', '', '$ipcbor.describe', '$ipcbor.subscribe', '$ipcbor.unsubscribe', '$ipcbor.hello'];

/** Base method names: never the hello (a base-framing peer does not send it; the hello has its own property). */
export const baseMethodArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...METHODS.filter((m) => m !== '$ipcbor.hello')) }, { weight: 1, arbitrary: textArb });
const methodArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: textArb });

/** Params the methods understand (bounded by the fuzz server), and anything at all. */
export const paramsArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<unknown>({}, { event: 'tick' }, { event: '*' }, { name: 'x' }, { name: 'x', times: 2 }, { ms: 50 }, 42).map((v) => encodeOr(v, new Uint8Array())) },
  { weight: 2, arbitrary: fc.record({ n: fc.nat(60), size: fc.nat(20000) }).map((v) => encodeOr(v, new Uint8Array())) },
  { weight: 3, arbitrary: fc.tuple(valueArb, fc.uint8Array({ maxLength: 16 })).map(([v, b]) => encodeOr(v, b)) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array()) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  // Large enough to touch the budgets.
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1 * MiB }).map((n) => encodeOr(new Uint8Array(n), new Uint8Array())) },
);

/** Bytes with the offsets of their u32 length fields (the mutations aim at those). */
export interface Wire {
  bytes: Uint8Array;
  lengths: number[];
}

export function joinWire(parts: readonly Wire[]): Wire {
  const bytes = Buffer.concat(parts.map((p) => p.bytes));
  const lengths: number[] = [];
  let at = 0;
  for (const p of parts) {
    for (const l of p.lengths) lengths.push(at + l);
    at += p.bytes.length;
  }
  return wire(bytes, lengths);
}

/** `[u32 len][a][u32 len][b]`: a base-framing request or an extended frame. */
function twoParts(a: Uint8Array, b: Uint8Array): Wire {
  return wire(Buffer.concat([...[a, b].flatMap((x) => [u32(x.length), x])]), [0, 4 + a.length]);
}

/** A Wire that prints short in a counterexample (a 1 MiB payload must not fill the log). */
export function wire(bytes: Uint8Array, lengths: number[]): Wire {
  return { bytes, lengths, [fc.toStringMethod]: () => `wire(${hexOf(bytes)}, [${lengths.join(', ')}])` } as Wire;
}

/** Hex of short bytes; long ones as their length and both ends (a replay uses the seed and path, not this). */
export function hexOf(b: Uint8Array): string {
  const hex = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.length).toString('hex');
  return b.length <= 96 ? `"${hex(b)}"` : `"${hex(b.subarray(0, 48))}…(${b.length} bytes)…${hex(b.subarray(b.length - 16))}"`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export const baseFrameArb: fc.Arbitrary<Wire> = fc.tuple(baseMethodArb, paramsArb).map(([m, p]) => twoParts(Buffer.from(m, 'utf8'), p));

/** Call ids: mostly the few in play (so frames hit live calls), sometimes anything. */
const idArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 2, 3) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 2 ** 32 - 1, 2 ** 32, -1, 1.5, 'x', null, 2n ** 64n - 1n) },
  { weight: 1, arbitrary: fc.nat() },
);
const countArb: fc.Arbitrary<unknown> = fc.oneof(fc.nat(100), fc.constantFrom<unknown>(0, -1, 2 ** 32, 2 ** 53, 2n ** 64n - 1n, 1.5, 'x', null));
const optsArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ timeout: fc.oneof(fc.nat(300), fc.constantFrom<unknown>(0, -1, 2 ** 31, 2n ** 64n - 1n, NaN, 'x')), stream: fc.boolean() }, { requiredKeys: [] }),
  valueArb,
);

/** A head of each kind (well-formed or nearly), and malformed ones. */
export const headArb: fc.Arbitrary<unknown[]> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constant(1), idArb, methodArb).map((h) => [...h]) },
  { weight: 3, arbitrary: fc.tuple(fc.constant(1), idArb, methodArb, optsArb).map((h) => [...h]) },
  fc.tuple(fc.constant(2), methodArb).map((h) => [...h]),
  { weight: 2, arbitrary: fc.tuple(fc.constant(3), idArb).map((h) => [...h]) },
  fc.tuple(fc.constant(4), idArb).map((h) => [...h]),
  fc.tuple(fc.constant(5), idArb, textArb, textArb).map((h) => [...h]),
  { weight: 2, arbitrary: fc.tuple(fc.constant(6), idArb).map((h) => [...h]) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(7), idArb).map((h) => [...h]) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(8), idArb, countArb).map((h) => [...h]) },
  fc.tuple(fc.constant(9), textArb, countArb).map((h) => [...h]),
  // Unknown kinds, extra or missing fields, anything.
  fc.tuple(fc.constantFrom(0, 10, 255, -1, 2 ** 32), idArb).map((h) => [...h]),
  fc.array(valueArb, { maxLength: 5 }),
);

/** An extended frame: its head (raw bytes sometimes) and payload. */
export const extendedFrameArb: fc.Arbitrary<Wire> = fc
  .tuple(fc.oneof({ weight: 9, arbitrary: headArb.map((h) => encodeOr(h, new Uint8Array([0x80]))) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) }), paramsArb)
  .map(([h, p]) => twoParts(h, p));

// ---- mutations ------------------------------------------------------------------

/** Lengths that sit on the edges of the limits. */
const interestingU32 = [0, 1, 2, 3, 4, 7, 0x17, 0x18, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x10001, MiB - 1, MiB, MiB + 1, 16 * MiB, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'length'; which: number; value: number; delta: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'repeat'; at: number; n: number; times: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('length' as const), which: fc.nat(), value: fc.oneof(fc.constantFrom(...interestingU32), fc.nat()), delta: fc.constantFrom(0, 0, -1, 1, -4, 4) }),
  },
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 1, max: 16 }) }),
);

/** Frames, then 0 to 4 mutations (none about a third of the time: valid frames reach the deep paths). */
export const mutationsArb = fc.oneof(fc.constant<Mutation[]>([]), fc.array(mutationArb, { minLength: 1, maxLength: 4 }));

export function mutate(wire: Wire, mutations: readonly Mutation[]): Uint8Array {
  let b = Buffer.from(wire.bytes);
  for (const m of mutations) {
    if (b.length === 0) break;
    switch (m.kind) {
      case 'flip': {
        const at = m.at % b.length;
        b[at] = b[at]! ^ (1 << m.bit);
        break;
      }
      case 'byte':
        b[m.at % b.length] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, m.at % b.length);
        break;
      case 'length': {
        // The length fields move with earlier inserts and deletes: aim at the original offset, if still inside.
        const at = wire.lengths.length ? wire.lengths[m.which % wire.lengths.length]! : 0;
        if (at + 4 <= b.length) {
          const value = m.value === 0 && m.delta === 0 ? 0 : m.delta !== 0 ? b.readUInt32BE(at) + m.delta : m.value;
          b.writeUInt32BE(value >>> 0, at);
        }
        break;
      }
      case 'insert': {
        const at = m.at % (b.length + 1);
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = m.at % b.length;
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
        break;
      }
      case 'repeat': {
        const at = m.at % b.length;
        const slice = b.subarray(at, at + m.n);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(m.times).fill(slice), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** Where to cut the bytes into separate writes (fractions of the length). */
export const splitsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 });

export function split(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const cuts = [...new Set(at.map((f) => Math.floor(f * bytes.length)))].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of cuts) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}

// ---- what the server sends back ----------------------------------------------------

/**
 * Reads everything the server sends on one fuzzed connection and checks it
 * against docs/PROTOCOL.md: base-framing responses whose body is one CBOR item
 * (ret 0) or non-empty UTF-8 text; after an accepted hello, extended frames
 * from the server (kinds 3–9) with well-formed heads and payloads within
 * the `maxFrameBytes` the client announced. Any violation is kept in
 * `violation` (the case fails on it).
 */
export class ServerOutput {
  violation: string | undefined;
  closed = false;
  lastData = performance.now();
  responses = 0;
  frames = 0;
  private readonly decoder: FrameDecoder;

  constructor(socket: Socket, helloSent: boolean, announcedMaxFrame = LIMITS.maxFrameBytes) {
    this.decoder = new FrameDecoder(
      'response',
      {
        response: (ret, body) => {
          const first = this.responses++ === 0;
          if (ret === 0) {
            let value: unknown;
            try {
              value = cbor.decode(body);
            } catch (err) {
              return this.fail(`a ret 0 body that is not one CBOR item (${(err as IpcborError).code})`);
            }
            if (first && helloSent) {
              // A hello answer (docs/PROTOCOL.md §6): everything after it is extended framing.
              const v = value as { version?: unknown; server?: unknown };
              if (v !== null && typeof v === 'object' && typeof v.server === 'string') {
                if (v.version !== 1) return this.fail(`hello answer version ${String(v.version)}`);
                this.decoder.mode = 'extended';
              }
            }
          } else {
            if (body.length === 0) return this.fail('an empty error text');
            try {
              new TextDecoder('utf-8', { fatal: true }).decode(body);
            } catch {
              return this.fail('an error text that is not UTF-8');
            }
          }
        },
        extended: (headBytes, payload) => {
          this.frames++;
          if (payload.length > announcedMaxFrame) return this.fail(`a payload of ${payload.length} bytes, over the ${announcedMaxFrame} announced`);
          let head: unknown;
          try {
            head = cbor.decode(headBytes);
          } catch {
            return this.fail('a head that is not CBOR');
          }
          if (!Array.isArray(head) || typeof head[0] !== 'number' || head[0] < 3 || head[0] > 9) return this.fail(`a head the server may not send: ${String(head)}`);
          const kind = head[0];
          if (kind !== 9 && !(Number.isInteger(head[1]) && (head[1] as number) >= 0 && (head[1] as number) < 2 ** 32)) return this.fail(`a bad id in ${JSON.stringify(head)}`);
          if (kind === 5 && (typeof head[2] !== 'string' || typeof head[3] !== 'string')) return this.fail('an ERROR without code and message');
          if (kind === 9 && typeof head[1] !== 'string') return this.fail('an EVENT without a name');
          if (payload.length > 0) {
            try {
              cbor.decode(payload);
            } catch {
              return this.fail(`a payload that is not one CBOR item (kind ${kind})`);
            }
          }
        },
      },
      // The hello answer itself is not bound by the offer; extended payloads are (checked above).
      { maxFrameBytes: 64 * MiB, maxMethodBytes: 64 * 1024 },
    );
    socket.on('data', (d: Buffer) => {
      this.lastData = performance.now();
      if (this.violation) return;
      try {
        this.decoder.push(d);
      } catch (err) {
        this.fail(`unreadable framing from the server: ${(err as IpcborError).code ?? String(err)}`);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  private fail(what: string): void {
    this.violation ??= what;
  }
}

// ---- the server under test --------------------------------------------------------

export interface Target {
  child: ChildServer;
  probe: Client;
  baseline: Mem;
  peak: Mem;
  cases: number;
  /** Fuzzed clients that half-closed and are still open (see finish). */
  halfClosed: Set<Socket>;
  /** Check the server after a case: alive, answering, within its bound (memory every `memEvery` cases). */
  check(opts?: { mem?: boolean; count?: boolean }): Promise<void>;
  /** The last check: every fuzzed connection gone, memory back within the bound; prints the numbers. */
  finish(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTarget(memEvery = 10): Promise<Target> {
  const child = await startServer({ address: `unix:${tempSocket()}`, options: LIMITS, script: FUZZ_SCRIPT });
  const probe = await connect(child.address);
  for (let i = 0; i < 20; i++) await probe.call('version');
  let baseline = await probe.call<Mem>('mem');
  for (let i = 0; i < 2; i++) {
    const m = await probe.call<Mem>('mem');
    if (held(m) < held(baseline)) baseline = m;
  }
  const bound = boundFor(baseline, LIMITS.maxServerBytes);
  const t: Target = {
    child,
    probe,
    baseline,
    peak: { ...baseline },
    cases: 0,
    halfClosed: new Set(),
    async check(opts = {}) {
      if (opts.count !== false) t.cases++;
      assert.ok(child.alive(), 'the server is alive');
      // Another client is still answered (a generous timeout: a hang fails the case, not the run).
      assert.equal(await probe.call('version', {}, { timeout: 10_000 }), '1.0.0');
      if (opts.mem || t.cases % memEvery === 0) {
        const m = await probe.call<Mem>('mem', {}, { timeout: 10_000 });
        if (held(m) > held(t.peak)) t.peak = { ...m, rss: Math.max(m.rss, t.peak.rss) };
        t.peak.rss = Math.max(t.peak.rss, m.rss);
        assert.ok(held(m) <= bound, `server memory ${mb(held(m))} is within ${mb(bound)} (baseline ${mb(held(baseline))}, maxServerBytes ${mb(LIMITS.maxServerBytes)})`);
      }
    },
    async finish(name) {
      // The fuzzing clients leave. One that only half-closed after the
      // server had stopped reading it is still there: its FIN may sit behind
      // bytes the server never reads (or wait in its own socket behind bytes
      // it could not send), and it waits for the server to close first.
      for (const s of t.halfClosed) s.destroy();
      t.halfClosed.clear();
      // Every fuzzed client is gone: the server lets go of all of them.
      const deadline = Date.now() + 10_000;
      let conns = await probe.call<number>('conns');
      while (conns !== 1 && Date.now() < deadline) {
        await sleep(50);
        conns = await probe.call<number>('conns');
      }
      await t.check({ mem: true, count: false });
      const after = await probe.call<Mem>('mem');
      console.log(
        `# fuzz ${JSON.stringify({ property: name, cases: t.cases, baseline: mb(held(baseline)), peak: mb(held(t.peak)), after: mb(held(after)), bound: mb(bound), peakRss: mb(t.peak.rss), connsLeft: conns - 1 })}`,
      );
      t.cases = 0;
      // What holds a connection that should have gone: the failure says why.
      const left = conns === 1 ? [] : await probe.call<unknown[]>('leftover');
      assert.equal(conns, 1, `only the probe is left connected; left: ${JSON.stringify(left)}`);
    },
    async close() {
      probe.destroy();
      await child.kill();
    },
  };
  return t;
}

/**
 * One case over a raw socket: (optionally) a valid hello first, then the
 * chunks as separate writes, then wait until the server closed the
 * connection or has been quiet for `quietMs`; check the server's output,
 * then the server (while the fuzzed connection is still open), then close
 * it (a reset or a half-close).
 */
export async function runCase(
  target: Target,
  chunks: readonly Uint8Array[],
  opts: {
    /** Send a valid hello first and wait for its answer. */
    hello?: boolean;
    /** The chunks start with a hello (maybe mutated): an answer to it switches the check to extended framing. */
    helloInBytes?: boolean;
    end?: boolean;
    quietMs?: number;
    /** The maxFrameBytes the hello announced: no payload from the server may be larger. */
    announcedMaxFrame?: number;
  } = {},
): Promise<ServerOutput> {
  const socket = await rawConnect(target.child.address);
  const helloBytes = opts.hello ? helloFrame() : undefined;
  const out = new ServerOutput(socket, helloBytes !== undefined || opts.helloInBytes === true, opts.announcedMaxFrame);
  try {
    if (helloBytes) {
      socket.write(helloBytes);
      const deadline = Date.now() + 5000;
      while (out.responses === 0 && !out.closed && !out.violation) {
        assert.ok(Date.now() < deadline, 'the hello is answered');
        await sleep(2);
      }
    }
    for (const c of chunks) {
      if (out.closed) break;
      if (c.length) socket.write(c);
      await new Promise((r) => setImmediate(r));
    }
    const quiet = opts.quietMs ?? 15;
    const start = performance.now();
    let since = performance.now();
    while (!out.closed && performance.now() - Math.max(since, out.lastData) < quiet && performance.now() - start < 2000) {
      await sleep(5);
      since = Math.max(since, out.lastData);
    }
    assert.equal(out.violation, undefined, `the server's answers keep the wire contract: ${out.violation}`);
    await target.check();
  } finally {
    if (opts.end) {
      socket.end();
      target.halfClosed.add(socket);
      socket.once('close', () => target.halfClosed.delete(socket));
    } else {
      socket.destroy();
    }
  }
  return out;
}

/** The hello a client sends (announcing our `maxFrameBytes`). */
export function helloFrame(offer: unknown = { version: 1, maxFrameBytes: LIMITS.maxFrameBytes, window: 4 }): Buffer {
  return Buffer.concat(encodeRequest('$ipcbor.hello', encodeOr(offer, new Uint8Array([0xa0]))));
}

export { encodeExtended, IpcborError };
