/**
 * Every hex example of docs/PROTOCOL.md, read from the document itself and
 * checked against the real encoder and decoder, so that the document and
 * the code cannot drift apart unnoticed:
 *
 * - the document is parsed: in code blocks, every run of hex lines (a
 *   leading `LABEL:` allowed, a trailing `…`/`...` meaning "cut short") is
 *   one example; in the prose and tables, every inline code span that is
 *   hex (`a0`, `1b0020000000000000`) is one;
 * - EXPECTED below lists what each example shows, in the document's order,
 *   as values: the encoder must produce the documented bytes (a cut-short
 *   example: begin with them), the decoders must read the documented bytes
 *   back to those values, and a label such as `ITEM [6, 8] 1` must name
 *   that head and payload;
 * - an example the list does not expect (a new one, or one moved) fails,
 *   and so does a line of a code block that looks like hex and is not
 *   understood: every hex example in the document is checked or the test
 *   says which is not.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { FrameDecoder, type DecoderMode } from '../../src/core/frame/decoder.js';
import { concatParts, encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { encodeCallHeader, encodeKindIdHeader } from '../../src/core/protocol/fast-heads.js';
import { decodeHead, Kind } from '../../src/core/protocol/heads.js';
import { s } from '../../src/core/schema.js';
import { golden, hex, toHex } from '../fixtures/golden.js';

const DOC = fileURLToPath(new URL('../../../docs/PROTOCOL.md', import.meta.url));

// ---- the document ---------------------------------------------------------------

/** One hex example as the document shows it. */
interface DocExample {
  /** 1-based line of its first hex line. */
  line: number;
  /** The number of the `## N.` section it is in. */
  section: number;
  /** In a code block, or an inline code span in the prose. */
  where: 'block' | 'inline';
  /** The hex, spaces removed. */
  hex: string;
  /** Cut short with `…` or `...`: the bytes are a prefix. */
  truncated: boolean;
  /** What the document says it is, where it says so next to the hex: `LABEL:` on the line, or the line before it in the block. */
  label?: string;
  /** The whole line (for inline spans: the table row or sentence). */
  text: string;
}

const HEX_LINE = /^(?:(?<label>.*\S):\s+)?(?<hex>[0-9a-f]+(?:\s+[0-9a-f]+)*)(?<cut>…|\.\.\.)?$/;
/** Hex-looking tokens anywhere in a code-block line: 8 hex digits or more. */
const HEXISH = /\b[0-9a-f]{8,}\b/;
/** An inline span that is hex: whole bytes, with a letter a-f or 8 digits at least (so `0`, `64`, `1024` are numbers, not hex). */
const isInlineHex = (t: string) => /^(?:[0-9a-f]{2})+$/.test(t) && (/[a-f]/.test(t) || t.length >= 8);

function extractExamples(text: string): { examples: DocExample[]; problems: string[] } {
  const lines = text.split('\n');
  const examples: DocExample[] = [];
  const problems: string[] = [];
  let section = 0;
  let inBlock = false;
  let open: DocExample | undefined; // an example that the next hex line continues
  let previous = ''; // the previous line in the current block
  lines.forEach((raw, i) => {
    const line = raw.trimEnd();
    const trimmed = line.trim();
    const where = i + 1;
    if (trimmed.startsWith('```')) {
      inBlock = !inBlock;
      open = undefined;
      previous = '';
      return;
    }
    if (!inBlock) {
      const h = /^## (\d+)\./.exec(line);
      if (h) section = Number(h[1]);
      for (const m of line.matchAll(/`([^`]+)`/g)) {
        if (isInlineHex(m[1]!)) examples.push({ line: where, section, where: 'inline', hex: m[1]!, truncated: false, text: trimmed });
      }
      return;
    }
    const m = HEX_LINE.exec(trimmed);
    if (trimmed !== '' && m) {
      const hexText = m.groups!.hex!.replace(/\s+/g, '');
      const label = m.groups!.label;
      if (hexText.length % 2 !== 0) problems.push(`line ${where}: an odd number of hex digits: ${trimmed}`);
      if (open && label === undefined && !open.truncated) {
        open.hex += hexText;
        open.truncated = m.groups!.cut !== undefined;
        open.text += `\n${trimmed}`;
      } else {
        open = { line: where, section, where: 'block', hex: hexText, truncated: m.groups!.cut !== undefined, text: trimmed };
        const said = label ?? (previous && !HEX_LINE.test(previous) ? previous : undefined);
        if (said !== undefined) open.label = said;
        examples.push(open);
      }
    } else {
      open = undefined;
      if (HEXISH.test(trimmed)) problems.push(`line ${where}: looks like hex but is not an example this test can read: ${trimmed}`);
    }
    previous = trimmed;
  });
  return { examples, problems };
}

/** A label's head and payload, when it reads `[NAME] [head as JSON] [payload as JSON | ...]`. */
function parseLabel(label: string): { head: unknown[]; payload?: unknown; elided: boolean } | undefined {
  const start = label.indexOf('[');
  if (start < 0 || !/^(?:[A-Z]+\s+)?$/.test(label.slice(0, start))) return undefined;
  for (let end = label.indexOf(']', start); end >= 0; end = label.indexOf(']', end + 1)) {
    let head: unknown;
    try {
      head = JSON.parse(label.slice(start, end + 1));
    } catch {
      continue;
    }
    const rest = label.slice(end + 1).trim();
    if (rest === '') return { head: head as unknown[], elided: false };
    if (rest === '...' || rest === '…') return { head: head as unknown[], elided: true };
    // Free text after the payload (two spaces, then a remark in parentheses) is a comment.
    const payloadText = rest.replace(/\s{2,}\(.*\)$/, '');
    try {
      return { head: head as unknown[], payload: JSON.parse(payloadText), elided: false };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

// ---- what each example shows ------------------------------------------------------

type Shape =
  | { kind: 'base-request'; method: string; params: unknown }
  | { kind: 'base-response'; ret: number; body: unknown }
  | { kind: 'extended'; head: unknown[]; payload?: unknown }
  | { kind: 'cbor'; value: unknown; decoded: unknown };

interface Expected {
  section: number;
  what: string;
  shape: Shape;
  /** Checks of the document's own words next to it (a table row). */
  row?: (text: string) => void;
}

const baseRequest = (section: number, what: string, method: string, params: unknown): Expected => ({ section, what, shape: { kind: 'base-request', method, params } });
const baseResponse = (section: number, what: string, ret: number, body: unknown): Expected => ({ section, what, shape: { kind: 'base-response', ret, body } });
const frame = (section: number, what: string, head: unknown[], ...payload: [] | [unknown]): Expected => ({ section, what, shape: payload.length === 0 ? { kind: 'extended', head } : { kind: 'extended', head, payload: payload[0] } });
/** A CBOR item: what is encoded, and what the decoder gives back (the same, unless said). */
const item = (section: number, what: string, value: unknown, decoded: unknown = value): Expected => ({ section, what, shape: { kind: 'cbor', value, decoded } });

/** 2^53−1, −(2^53+1), −2^64…: the integers of the table in §5, read as bigints. */
function integerOf(text: string): bigint {
  const m = /^(-)?\(?2\^(\d+)(?:([+-])1)?\)?$/.exec(text.replace(/−/g, '-'));
  assert.ok(m, `an integer the test can read: ${text}`);
  let v = 2n ** BigInt(m[2]!);
  if (m[3] === '+') v += 1n;
  if (m[3] === '-') v -= 1n;
  return m[1] ? -v : v;
}

/** A row of the §5 table: | `cbor` | integer | decodes to | s.int() |, checked against the decoder and s.int(). */
function integerRow(section: number, value: bigint): Expected {
  const asNumber = Number(value);
  const decoded = value >= -(2n ** 53n) && value <= 2n ** 53n ? asNumber : value;
  return {
    ...item(section, `the integer ${value}`, value, decoded),
    row(text) {
      const cells = text.split('|').map((c) => c.trim()).filter(Boolean);
      assert.equal(cells.length, 4, text);
      assert.equal(integerOf(cells[1]!), value, `the row names the integer it shows: ${text}`);
      const got = cbor.decode(hex(cells[0]!.replace(/`/g, '')));
      assert.equal(cells[2], typeof got, `"decodes to" is what the decoder gives: ${text}`);
      const r = s.int()['~standard'].validate(got) as { issues?: unknown };
      assert.equal(cells[3], r.issues ? 'refuses' : 'accepts', `the s.int() column is what s.int() does: ${text}`);
    },
  };
}

const fired = { eventType: 'on_echo_fired', payload: { message: 'hi', echoCount: 1 } };
const TWO_53 = 2 ** 53;
const flat = (h: string) => h.replace(/\s+/g, '');

/** Every hex example of docs/PROTOCOL.md, in its order. */
const EXPECTED: Expected[] = [
  // §2 base framing
  baseRequest(2, '`version` request', 'version', {}),
  baseResponse(2, '`version` response', 0, 'nim-timer v0.1.0'),
  baseRequest(2, '`echo` request', 'echo', { req: { message: 'hello over the wire', delayMs: 5 } }),
  baseResponse(2, '`echo` response', 0, { echoed: 'hello over the wire', timerName: 'ipc-server' }),
  baseResponse(2, 'error response', 1, 'forced failure for echo'),
  // §5 the CBOR profile
  item(5, 'the number 2^53, sent as a float', TWO_53),
  item(5, 'the bigint 2^53, sent as an integer (decoded: a number)', 2n ** 53n, TWO_53),
  ...['2^53-1', '-(2^53-1)', '2^53', '-2^53', '2^53+1', '-(2^53+1)', '2^64-1', '-2^64'].map((v) => integerRow(5, integerOf(v))),
  item(5, 'the empty map, params of a method without parameters', {}),
  // §6 the hello
  baseRequest(6, 'hello request', '$ipcbor.hello', { version: 1, maxFrameBytes: 16777216, window: 64 }),
  baseResponse(6, 'hello answer', 0, { version: 1, maxFrameBytes: 16777216, window: 64, maxInflight: 1024, server: 'ipcbor' }),
  item(6, 'hello refusal', { refused: { code: 'IPCBOR_ERR_OVERLOADED', message: 'too many connections' } }),
  // §8 calls
  frame(8, 'CALL', [1, 1, 'echo'], { req: { message: 'hi', delayMs: 0 } }),
  frame(8, 'CALL with a deadline', [1, 2, 'echo', { timeout: 5000 }], { req: { message: 'hi', delayMs: 9000 } }),
  frame(8, 'RESULT', [4, 1], { echoed: 'hi', timerName: 'ipc-server' }),
  frame(8, 'ERROR', [5, 3, 'IPCBOR_ERR_UNKNOWN_METHOD', 'unknown method: nope']),
  frame(8, 'NOTIFY', [2, 'log'], { line: 'x' }),
  // §9 cancellation
  frame(9, 'CANCEL', [3, 2]),
  // §10 events
  frame(10, 'subscribe', [1, 4, '$ipcbor.subscribe'], { event: 'on_echo_fired' }),
  frame(10, 'its answer', [4, 4], null),
  frame(10, 'EVENT of the default service', [9, 'timer.on_echo_fired', 0, 'on_echo_fired'], fired),
  frame(10, 'EVENT, short head (cut short)', [9, 'on_echo_fired'], fired),
  frame(10, 'EVENT with a drop count (cut short)', [9, 'on_echo_fired', 5], fired),
  // §11 streams
  frame(11, 'CALL with streamed params', [1, 8, 'upload', { stream: true }]),
  frame(11, 'ITEM', [6, 8], 1),
  frame(11, 'END', [7, 8]),
  frame(11, 'CREDIT', [8, 8, 32]),
];

/** The bytes the encoders produce for a shape. */
function encode(shape: Shape): Uint8Array {
  switch (shape.kind) {
    case 'base-request':
      return concatParts(encodeRequest(shape.method, cbor.encode(shape.params)));
    case 'base-response':
      return concatParts(encodeResponse(shape.ret, shape.ret === 0 ? cbor.encode(shape.body) : new TextEncoder().encode(shape.body as string)));
    case 'extended':
      return concatParts(encodeExtended(cbor.encode(shape.head), 'payload' in shape ? cbor.encode(shape.payload) : new Uint8Array(0)));
    case 'cbor':
      return cbor.encode(shape.value);
  }
}

/** Exactly one frame of `mode` from `bytes`, as the streaming decoder delivers it (byte by byte, to be hard on it). */
function oneFrame(mode: DecoderMode, bytes: Uint8Array): { a: unknown; b: Uint8Array } {
  const frames: { a: unknown; b: Uint8Array }[] = [];
  const decoder = new FrameDecoder(mode, {
    request: (method, payload) => frames.push({ a: method, b: payload }),
    response: (ret, body) => frames.push({ a: ret, b: body }),
    extended: (head, payload) => frames.push({ a: head, b: payload }),
  });
  for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
  assert.equal(frames.length, 1, 'exactly one frame');
  assert.equal(decoder.buffered, 0, 'no byte left over');
  return frames[0]!;
}

/** What the decoders make of complete documented bytes, in the terms of the shape. */
function decode(shape: Shape, bytes: Uint8Array): Shape {
  switch (shape.kind) {
    case 'base-request': {
      const f = oneFrame('request', bytes);
      return { kind: 'base-request', method: f.a as string, params: f.b.length === 0 ? undefined : cbor.decode(f.b) };
    }
    case 'base-response': {
      const f = oneFrame('response', bytes);
      const ret = f.a as number;
      return { kind: 'base-response', ret, body: ret === 0 ? cbor.decode(f.b) : new TextDecoder('utf-8', { fatal: true }).decode(f.b) };
    }
    case 'extended': {
      const f = oneFrame('extended', bytes);
      const headBytes = f.a as Uint8Array;
      decodeHead(cbor, headBytes); // a head the peer accepts
      const head = cbor.decode(headBytes) as unknown[];
      return f.b.length === 0 ? { kind: 'extended', head } : { kind: 'extended', head, payload: cbor.decode(f.b) };
    }
    case 'cbor':
      return { kind: 'cbor', value: shape.value, decoded: cbor.decode(bytes) };
  }
}

// ---- the checks ------------------------------------------------------------------

const { examples, problems } = extractExamples(readFileSync(DOC, 'utf8'));
const describeExample = (e: DocExample) => `line ${e.line} (§${e.section}, ${e.where}): ${e.hex.slice(0, 40)}${e.hex.length > 40 ? '…' : ''}`;

describe('docs/PROTOCOL.md hex examples', () => {
  it('the document has no hex the test cannot read', () => {
    assert.deepEqual(problems, []);
  });

  it('every example in the document is one this test expects, in order: none new, none gone', () => {
    const lines = [`the document has ${examples.length} hex examples, this test expects ${EXPECTED.length}:`];
    for (let i = 0; i < Math.max(examples.length, EXPECTED.length); i++) {
      const e = examples[i];
      const x = EXPECTED[i];
      lines.push(`  ${i + 1}. ${e ? describeExample(e) : '(none)'}  <->  ${x ? `§${x.section} ${x.what}` : '(none expected)'}`);
    }
    assert.equal(examples.length, EXPECTED.length, lines.join('\n'));
    examples.forEach((e, i) => assert.equal(e.section, EXPECTED[i]!.section, lines.join('\n')));
  });

  examples.forEach((e, i) => {
    const x = EXPECTED[i];
    if (!x) return;
    it(`§${x.section} ${x.what} (${describeExample(e)})`, () => {
      const produced = toHex(encode(x.shape));
      if (e.truncated) {
        assert.ok(produced.startsWith(e.hex), `the document's bytes begin what the encoder produces:\n  doc ${e.hex}\n  enc ${produced}`);
        assert.ok(e.hex.length < produced.length, 'a cut-short example is shorter than the frame');
      } else {
        assert.equal(e.hex, produced, 'byte for byte what the encoder produces');
        const back = decode(x.shape, hex(e.hex));
        assert.deepEqual(back, x.shape.kind === 'cbor' ? { ...x.shape } : x.shape, 'the decoders read the documented bytes back to what they show');
      }
      if (x.shape.kind === 'extended' && e.label !== undefined) {
        const said = parseLabel(e.label);
        assert.ok(said, `a label this test can read: ${e.label}`);
        assert.deepEqual(said.head, x.shape.head, `the label names the head: ${e.label}`);
        if ('payload' in said) assert.deepEqual(said.payload, x.shape.payload, `the label names the payload: ${e.label}`);
        else if (!said.elided && !e.truncated) assert.ok(!('payload' in x.shape), `the label shows no payload, and the frame has none: ${e.label}`);
      }
      if (x.row) x.row(e.text);
    });
  });

  it('the extraction finds what it should: labels, lines cut short, inline spans, and refuses what it cannot read', () => {
    const sample = [
      '## 3. x',
      'The map `a0`, the number `1024`, the word `add`, `0`.',
      '```',
      'ITEM [6, 8] 1:  00000003 820608 00000001 01',
      'RESULT [4, 4] null',
      '00000003 820404',
      '00000001 f6',
      '',
      'EVENT [9, "e"]:  00000010 8209 00000038 a269…',
      'something 0123456789abcdef that is not an example',
      '```',
    ].join('\n');
    const { examples: got, problems: bad } = extractExamples(sample);
    assert.deepEqual(
      got.map((e) => [e.line, e.section, e.where, e.hex, e.truncated, e.label]),
      [
        [2, 3, 'inline', 'a0', false, undefined],
        [4, 3, 'block', '0000000382060800000001' + '01', false, 'ITEM [6, 8] 1'],
        [6, 3, 'block', '0000000382040400000001f6', false, 'RESULT [4, 4] null'],
        [9, 3, 'block', '000000108209' + '00000038a269', true, 'EVENT [9, "e"]'],
      ],
    );
    assert.equal(bad.length, 1);
    assert.match(bad[0]!, /^line 10: looks like hex/);
    assert.deepEqual(parseLabel('ITEM [6, 8] 1'), { head: [6, 8], payload: 1, elided: false });
    assert.deepEqual(parseLabel('CALL [1, 8, "upload", {"stream": true}]'), { head: [1, 8, 'upload', { stream: true }], elided: false });
    assert.deepEqual(parseLabel('EVENT [9, "on_echo_fired", 5] ...'), { head: [9, 'on_echo_fired', 5], elided: true });
    assert.equal(parseLabel('{refused: {code: "X"}}'), undefined);
  });

  it('the base examples of §2 are the frames captured from the reference C peers (test/fixtures/golden.ts)', () => {
    const of = (what: string) => examples[EXPECTED.findIndex((x) => x.what === what)]!.hex;
    assert.equal(of('`version` request'), flat(golden.versionRequest));
    assert.equal(of('`version` response'), flat(golden.versionResponse));
    assert.equal(of('`echo` request'), flat(golden.echoRequest));
    assert.equal(of('`echo` response'), flat(golden.echoResponse));
    assert.equal(of('error response'), flat(golden.errorResponse));
  });

  it('the hand-written headers produce the documented bytes too', () => {
    const call = examples[EXPECTED.findIndex((x) => x.what === 'CALL')]!;
    const result = examples[EXPECTED.findIndex((x) => x.what === 'RESULT')]!;
    assert.ok(call.hex.startsWith(toHex(encodeCallHeader(1, new TextEncoder().encode('echo'), 26))));
    assert.ok(result.hex.startsWith(toHex(encodeKindIdHeader(Kind.Result, 1, 32))));
  });

  it('the documented heads decode, through the peer\'s head parser, to what they say', () => {
    const headOf = (what: string) => {
      const e = examples[EXPECTED.findIndex((x) => x.what === what)]!;
      const bytes = hex(e.hex);
      const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
      return decodeHead(cbor, bytes.subarray(4, 4 + len));
    };
    assert.deepEqual(headOf('EVENT with a drop count (cut short)'), { kind: Kind.Event, name: 'on_echo_fired', dropped: 5, alias: undefined });
    assert.deepEqual(headOf('EVENT of the default service'), { kind: Kind.Event, name: 'timer.on_echo_fired', dropped: 0, alias: 'on_echo_fired' });
    assert.deepEqual(headOf('CREDIT'), { kind: Kind.Credit, id: 8, n: 32 });
  });
});
