/**
 * `npm run bench:codec`: ns per encode and per decode of a few typical
 * messages, ipcbor's codec against the cborg-based codec it replaced
 * (test/unit/codec-reference.ts) and against cbor-x in pure JS (from
 * bench/peers, loaded as bench/codecs.ts does: native acceleration off), in
 * one process and one run, their timed rounds interleaved. A line per
 * message says whether ipcbor's codec is at or below cbor-x's time. Without
 * bench/peers installed, cbor-x is left out and the output says so.
 *
 *   node dist/bench/codec.js [--json]
 *
 * Environment:
 *   BENCH_MS       measured milliseconds per cell and round (default 300)
 *   BENCH_ROUNDS   rounds, the median is reported (default 5)
 */
import { cbor, wireCodec } from '../src/core/codec/cbor.js';
import { referenceCbor } from '../test/unit/codec-reference.js';
import { CBORX_OPTIONS, cborxVersion, loadCborX, type BenchCodec } from './codecs.js';

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
 * of the functions alternate, so that a busy spell of the machine hits all.
 */
function timeAll(fns: readonly (() => unknown)[]): number[] {
  const batches = fns.map(calibrate);
  fns.forEach((fn, i) => round(fn, batches[i]!)); // warm-up
  const times: number[][] = fns.map(() => []);
  for (let r = 0; r < rounds; r++) fns.forEach((fn, i) => times[i]!.push(round(fn, batches[i]!)));
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return times.map(median);
}

/** cbor-x, or why it is left out. */
function cborx(): { codec?: BenchCodec; version?: string; missing?: string } {
  const version = cborxVersion();
  if (version === undefined) return { missing: 'cbor-x is not installed (npm run bench:peers): it is left out' };
  try {
    return { codec: loadCborX(), version };
  } catch (err) {
    return { missing: `cbor-x ${version} does not load (${(err as Error).message.split('\n')[0]}): it is left out` };
  }
}

const x = cborx();
if (x.missing) process.stderr.write(`${x.missing}\n`);

interface Row {
  message: string;
  bytes: number;
  oldEncode: number;
  newEncode: number;
  /** ipcbor's wire encoder (what servers, clients and relays send with): small results as views of a shared slab, as cbor-x's are views of its shared buffer. */
  wireEncode: number;
  oldDecode: number;
  newDecode: number;
  /** cbor-x, when installed: its times, its encoding's size, and whether ipcbor's codec is at or below its time. */
  cborx?: {
    encode: number;
    decode: number;
    bytes: number;
    sameBytes: boolean;
    ipcborEncodeAtOrBelow: boolean;
    ipcborDecodeAtOrBelow: boolean;
    decodesBytesAsView?: boolean;
    /** Where cbor-x's decode returns byte strings as views: like against like, copies against copies (ipcbor decode, cbor-x copyBuffers) and views against views (ipcbor decodeOwned, what the framing uses for frames it owns, against cbor-x's default). */
    copying?: { ipcbor: number; cborx: number; atOrBelow: boolean };
    views?: { ipcbor: number; cborx: number; atOrBelow: boolean };
  };
}

let sink = 0;
const rows: Row[] = [];
for (const [message, value] of MESSAGES) {
  const bytes = cbor.encode(value);
  if (Buffer.compare(bytes, referenceCbor.encode(value)) !== 0) throw new Error(`${message}: the encoders disagree`);
  process.stderr.write(`${message}...\n`);
  const c = x.codec;
  const encoders = [() => (sink += referenceCbor.encode(value).length), () => (sink += cbor.encode(value).length), () => (sink += wireCodec.encode(value).length)];
  const decoders = [() => (sink += referenceCbor.decode(bytes) === null ? 1 : 0), () => (sink += cbor.decode(bytes) === null ? 1 : 0)];
  // cbor-x decodes its own encoding (the same bytes as ipcbor's but where its float or map-header choices differ).
  const theirs = c?.encode(value);
  if (c && theirs) {
    encoders.push(() => (sink += c.encode(value).length));
    decoders.push(() => (sink += c.decode(theirs) === null ? 1 : 0));
  }
  const [oldEncode, newEncode, wireEncode, xEncode] = timeAll(encoders);
  const [oldDecode, newDecode, xDecode] = timeAll(decoders);
  const row: Row = { message, bytes: bytes.length, oldEncode: oldEncode!, newEncode: newEncode!, wireEncode: wireEncode!, oldDecode: oldDecode!, newDecode: newDecode! };
  if (theirs && xEncode !== undefined && xDecode !== undefined) {
    row.cborx = {
      encode: xEncode,
      decode: xDecode,
      bytes: theirs.length,
      sameBytes: Buffer.compare(bytes, theirs) === 0,
      // cbor-x's results are views of one shared buffer: compared with ipcbor's wire encoder, whose small results are views of a shared slab (cbor.encode() gives memory of its own, a copy more).
      ipcborEncodeAtOrBelow: wireEncode! <= xEncode,
      ipcborDecodeAtOrBelow: newDecode! <= xDecode,
    };
    // A byte string cbor-x returns as a view into the input it decoded, not a copy: far less work than ipcbor's decode(), which copies.
    const back = c!.decode(theirs);
    if (back instanceof Uint8Array) row.cborx.decodesBytesAsView = back.buffer === theirs.buffer;
    if (row.cborx.decodesBytesAsView && c!.decodeCopying) {
      const owned = bytes.slice();
      const [ipcborCopy, xCopy, ipcborViews, xViews] = timeAll([
        () => (sink += cbor.decode(bytes) === null ? 1 : 0),
        () => (sink += c!.decodeCopying!(theirs) === null ? 1 : 0),
        () => (sink += cbor.decodeOwned!(owned) === null ? 1 : 0),
        () => (sink += c!.decode(theirs) === null ? 1 : 0),
      ]);
      row.cborx.copying = { ipcbor: ipcborCopy!, cborx: xCopy!, atOrBelow: ipcborCopy! <= xCopy! };
      row.cborx.views = { ipcbor: ipcborViews!, cborx: xViews!, atOrBelow: ipcborViews! <= xViews! };
      row.cborx.ipcborDecodeAtOrBelow = row.cborx.copying.atOrBelow && row.cborx.views.atOrBelow;
    }
  }
  rows.push(row);
}

if (json) {
  console.log(JSON.stringify({ node: process.version, ...(x.version ? { cborx: { version: x.version, options: CBORX_OPTIONS, pureJs: true } } : { cborx: { missing: x.missing } }), rows }, null, 2));
} else {
  const f = (n: number) => n.toFixed(0);
  const times = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  const withX = rows.some((r) => r.cborx);
  const table = [
    ['message', 'bytes', 'encode old', 'encode new', 'speed-up', ...(withX ? ['encode cbor-x'] : []), 'decode old', 'decode new', 'speed-up', ...(withX ? ['decode cbor-x'] : [])],
    ...rows.map((r) => [
      r.message,
      String(r.bytes),
      f(r.oldEncode),
      f(r.newEncode),
      times(r.oldEncode, r.newEncode),
      ...(withX ? [r.cborx ? f(r.cborx.encode) : '-'] : []),
      f(r.oldDecode),
      f(r.newDecode),
      times(r.oldDecode, r.newDecode),
      ...(withX ? [r.cborx ? f(r.cborx.decode) : '-'] : []),
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const [i, row] of table.entries()) {
    console.log(`| ${row.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join(' | ')} |`);
    if (i === 0) console.log(`|${widths.map((w, j) => (j === 0 ? ':' : '-') + '-'.repeat(w) + (j === 0 ? '-' : ':')).join('|')}|`);
  }
  console.log(`\nns per call, median of ${rounds} interleaved rounds of ${ms} ms; node ${process.version}. old = the cborg-based codec (test/unit/codec-reference.ts).`);
  if (withX) {
    console.log(`cbor-x ${x.version} in pure JS (CBOR_NATIVE_ACCELERATION_DISABLED=true), ${CBORX_OPTIONS}; it decodes its own encoding.`);
    const verdict = (ok: boolean) => (ok ? 'at or below cbor-x' : 'ABOVE cbor-x');
    for (const r of rows) {
      if (!r.cborx) continue;
      const size = (r.cborx.sameBytes ? 'same bytes' : `cbor-x writes ${r.cborx.bytes} bytes`) + (r.cborx.decodesBytesAsView ? '; cbor-x decodes the bytes as a view into its input (no copy)' : '');
      const { copying, views } = r.cborx;
      const decode =
        copying && views
          ? `decode copying byte strings ${verdict(copying.atOrBelow)} (${f(copying.ipcbor)} vs ${f(copying.cborx)} ns with copyBuffers), decode into views ${verdict(views.atOrBelow)} (decodeOwned ${f(views.ipcbor)} vs ${f(views.cborx)} ns)`
          : `decode ${verdict(r.cborx.ipcborDecodeAtOrBelow)} (${f(r.newDecode)} vs ${f(r.cborx.decode)} ns)`;
      console.log(`  ${r.message}: ipcbor wire encode ${verdict(r.cborx.ipcborEncodeAtOrBelow)} (${f(r.wireEncode)} vs ${f(r.cborx.encode)} ns; cbor.encode, memory of its own, ${f(r.newEncode)}), ${decode}; ${size}`);
    }
  } else {
    console.log(x.missing);
  }
}
if (sink === -1) console.log(sink);
