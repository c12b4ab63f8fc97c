/**
 * `npm run bench:codec`: ns per encode and per decode of a few typical
 * messages, ipcbor's codec against the cborg-based codec it replaced
 * (test/unit/codec-reference.ts), in one process and one run, their timed
 * rounds interleaved.
 *
 *   node dist/bench/codec.js [--json]
 *
 * Environment:
 *   BENCH_MS       measured milliseconds per cell and round (default 300)
 *   BENCH_ROUNDS   rounds, the median is reported (default 5)
 */
import { cbor } from '../src/core/codec/cbor.js';
import { referenceCbor } from '../test/unit/codec-reference.js';

const env = process.env;
const json = process.argv.includes('--json');
const ms = Number(env.BENCH_MS ?? 300);
const rounds = Math.max(1, Math.floor(Number(env.BENCH_ROUNDS ?? 5)));

const nested = {
  id: 42,
  user: { name: 'Ada', tags: ['admin', 'ops'], active: true },
  items: [
    { sku: 'a-1', qty: 2, price: 9.5, dims: [10, 20, 30] },
    { sku: 'b-22', qty: 1, price: 120.25, dims: [1, 2, 3] },
  ],
  note: null,
};

const MESSAGES: [string, unknown][] = [
  ['echo params {req:{message,delayMs}}', { req: { message: 'hello over the wire', delayMs: 5 } }],
  ['echo result {echoed,timerName}', { echoed: 'hello over the wire', timerName: 'ipc-server' }],
  ['3-level nested object with arrays', nested],
  ['1 KiB string', 'x'.repeat(1024)],
  ['64 KiB Uint8Array', new Uint8Array(65536).map((_, i) => i & 0xff)],
  ['array of 1000 ints', Array.from({ length: 1000 }, (_, i) => i * 37 - 5000)],
];

/** A batch size for `fn` that takes about a millisecond. */
function calibrate(fn: () => unknown): number {
  let batch = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    if (Number(process.hrtime.bigint() - t0) > 1e6) return batch;
    batch *= 2;
  }
}

/** ns per call of `fn` over about `ms` milliseconds. */
function round(fn: () => unknown, batch: number): number {
  let calls = 0;
  let elapsed = 0;
  const t0 = process.hrtime.bigint();
  while (elapsed < ms * 1e6) {
    for (let i = 0; i < batch; i++) fn();
    calls += batch;
    elapsed = Number(process.hrtime.bigint() - t0);
  }
  return elapsed / calls;
}

/**
 * ns per call of each function, the median of `rounds` rounds. The rounds
 * of the two alternate, so that a busy spell of the machine hits both.
 */
function timePair(a: () => unknown, b: () => unknown): [number, number] {
  const batchA = calibrate(a);
  const batchB = calibrate(b);
  round(a, batchA); // warm-up
  round(b, batchB);
  const ra: number[] = [];
  const rb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    ra.push(round(a, batchA));
    rb.push(round(b, batchB));
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return [median(ra), median(rb)];
}

let sink = 0;
const rows: { message: string; bytes: number; oldEncode: number; newEncode: number; oldDecode: number; newDecode: number }[] = [];
for (const [message, value] of MESSAGES) {
  const bytes = cbor.encode(value);
  if (Buffer.compare(bytes, referenceCbor.encode(value)) !== 0) throw new Error(`${message}: the encoders disagree`);
  process.stderr.write(`${message}...\n`);
  const [oldEncode, newEncode] = timePair(
    () => (sink += referenceCbor.encode(value).length),
    () => (sink += cbor.encode(value).length),
  );
  const [oldDecode, newDecode] = timePair(
    () => (sink += referenceCbor.decode(bytes) === null ? 1 : 0),
    () => (sink += cbor.decode(bytes) === null ? 1 : 0),
  );
  rows.push({ message, bytes: bytes.length, oldEncode, newEncode, oldDecode, newDecode });
}

if (json) {
  console.log(JSON.stringify({ node: process.version, rows }, null, 2));
} else {
  const f = (n: number) => n.toFixed(0);
  const x = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  const table = [
    ['message', 'bytes', 'encode old', 'encode new', 'speed-up', 'decode old', 'decode new', 'speed-up'],
    ...rows.map((r) => [r.message, String(r.bytes), f(r.oldEncode), f(r.newEncode), x(r.oldEncode, r.newEncode), f(r.oldDecode), f(r.newDecode), x(r.oldDecode, r.newDecode)]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const [i, row] of table.entries()) {
    console.log(`| ${row.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join(' | ')} |`);
    if (i === 0) console.log(`|${widths.map((w, j) => (j === 0 ? ':' : '-') + '-'.repeat(w) + (j === 0 ? '-' : ':')).join('|')}|`);
  }
  console.log(`\nns per call, median of ${rounds} interleaved rounds of ${ms} ms; node ${process.version}. old = the cborg-based codec (test/unit/codec-reference.ts).`);
}
if (sink === -1) console.log(sink);
