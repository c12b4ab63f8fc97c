/**
 * Runs the conformance vectors (conformance/vectors.json, described in
 * conformance/README.md) against a server: each case on a fresh transport,
 * its `send` bytes written as they are, what comes back read and matched
 * step by step. Platform-free: the caller dials.
 */
import { cbor } from '../codec/cbor.js';
import type { Dialer, OpenTransport } from '../transport.js';

/** A value pattern: JSON matched against a decoded CBOR item (conformance/README.md, "Patterns"). */
export type Pattern = null | boolean | number | string | readonly Pattern[] | { readonly [key: string]: Pattern };

export interface FrameExpect {
  head: Pattern;
  payload?: Pattern;
  /** The payload must be empty (payload_len 0). */
  empty?: boolean;
}

export interface Step {
  note?: string;
  /** Bytes to write, in hex (spaces allowed). */
  send?: string;
  /** Write `send` this many times: `NAME.KEY` or `NAME.KEY+N`, from a captured answer. */
  repeat?: string;
  /** The next answer is a base-framing response. */
  response?: { ret: 0; body: Pattern } | { ret: 'error'; text?: Pattern };
  /** Keep the decoded body of that response under this name (for `repeat`). */
  capture?: string;
  /** The next extended frame matches. */
  frame?: FrameExpect;
  /** The next frames match these, in any order. */
  frames?: FrameExpect[];
  /** The server closes the connection, sending nothing more. */
  close?: boolean;
  /** Frames of these kinds arriving before what the step expects are passed over. */
  skip?: number[];
}

export interface Case {
  name: string;
  section?: string;
  about: string;
  steps: Step[];
}

export interface Vectors {
  format: number;
  about?: string;
  cases: Case[];
}

export interface CaseResult {
  name: string;
  ok: boolean;
  /** For a failed case: the step that failed (from 0), its note, and what differed. */
  step?: number;
  note?: string;
  difference?: string;
}

export interface RunOptions {
  /** How long a step waits for what it expects before failing (ms; default 5000). */
  stepTimeout?: number;
  signal?: AbortSignal;
}

class Mismatch extends Error {}

const EMPTY = new Uint8Array(0);
/** Larger lengths from the server under test are taken as a failure, not read. */
const MAX_READ = 64 * 1024 * 1024;

export function hexToBytes(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new TypeError(`not hex: ${hex.slice(0, 40)}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Hex of what a server sent, for a report: at most its first 256 bytes, and how many there were. */
function shortHex(bytes: Uint8Array): string {
  return bytes.length <= 256 ? bytesToHex(bytes) : `${bytesToHex(bytes.subarray(0, 256))}… (${bytes.length} bytes)`;
}

/** Most bytes a case keeps of what the server sent and the case has not read: a frame at the usual limit, and its head. */
const MAX_UNREAD = 16 * 1024 * 1024 + 64 * 1024;

/** Shows a decoded CBOR item the way patterns are written (bigints as numbers, byte strings as h'..'). */
export function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v instanceof Uint8Array ? `h'${bytesToHex(v)}'` : v)) ?? String(value);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

function isInteger(v: unknown): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
}

/** Why `value` does not match `pattern`, or undefined when it does. */
export function mismatch(pattern: Pattern, value: unknown, path = '$'): string | undefined {
  if (pattern === null || typeof pattern === 'boolean' || typeof pattern === 'string') {
    return value === pattern ? undefined : `${path}: expected ${show(pattern)}, got ${show(value)}`;
  }
  if (typeof pattern === 'number') {
    const same = typeof value === 'bigint' ? Number.isInteger(pattern) && value === BigInt(pattern) : value === pattern;
    return same ? undefined : `${path}: expected ${pattern}, got ${show(value)}`;
  }
  if (Array.isArray(pattern)) {
    if (!Array.isArray(value)) return `${path}: expected an array, got ${show(value)}`;
    if (value.length !== pattern.length) return `${path}: expected ${pattern.length} elements, got ${value.length}: ${show(value)}`;
    for (let i = 0; i < pattern.length; i++) {
      const m = mismatch(pattern[i]!, value[i], `${path}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  const p = pattern as { readonly [key: string]: Pattern };
  const keys = Object.keys(p);
  const op = keys.length === 1 && keys[0]!.startsWith('$') ? keys[0]! : undefined;
  if (op === undefined) {
    if (!isPlainObject(value)) return `${path}: expected a map, got ${show(value)}`;
    const extra = Object.keys(value).filter((k) => !(k in p));
    if (extra.length > 0) return `${path}: unexpected key ${show(extra[0])}`;
    return matchKeys(p, value, path);
  }
  const arg = p[op]!;
  switch (op) {
    case '$any':
      return undefined;
    case '$type':
      return typeMismatch(arg as string, value, path);
    case '$match':
      if (typeof value !== 'string') return `${path}: expected text matching /${arg as string}/, got ${show(value)}`;
      return new RegExp(arg as string).test(value) ? undefined : `${path}: expected text matching /${arg as string}/, got ${show(value)}`;
    case '$min':
      return isInteger(value) && value >= (arg as number) ? undefined : `${path}: expected an integer >= ${arg as number}, got ${show(value)}`;
    case '$has':
      if (!isPlainObject(value)) return `${path}: expected a map, got ${show(value)}`;
      return matchKeys(arg as { readonly [key: string]: Pattern }, value, path);
    case '$prefix': {
      const items = arg as readonly Pattern[];
      if (!Array.isArray(value) || value.length < items.length) return `${path}: expected an array of at least ${items.length} elements, got ${show(value)}`;
      for (let i = 0; i < items.length; i++) {
        const m = mismatch(items[i]!, value[i], `${path}[${i}]`);
        if (m) return m;
      }
      return undefined;
    }
    case '$oneOf': {
      const options = arg as readonly Pattern[];
      const misses = options.map((o) => mismatch(o, value, path));
      return misses.some((m) => m === undefined) ? undefined : misses.join(' / ');
    }
    default:
      throw new TypeError(`unknown pattern operator ${op} at ${path}`);
  }
}

function matchKeys(p: { readonly [key: string]: Pattern }, value: Record<string, unknown>, path: string): string | undefined {
  for (const [k, sub] of Object.entries(p)) {
    if (!Object.prototype.hasOwnProperty.call(value, k)) return `${path}: missing key ${show(k)} in ${show(value)}`;
    const m = mismatch(sub, value[k], `${path}.${k}`);
    if (m) return m;
  }
  return undefined;
}

function typeMismatch(type: string, value: unknown, path: string): string | undefined {
  const ok =
    type === 'uint' ? isInteger(value) && value >= 0
    : type === 'int' ? isInteger(value)
    : type === 'text' ? typeof value === 'string'
    : type === 'bytes' ? value instanceof Uint8Array
    : type === 'array' ? Array.isArray(value)
    : type === 'map' ? isPlainObject(value)
    : type === 'bool' ? typeof value === 'boolean'
    : type === 'null' ? value === null
    : (() => {
        throw new TypeError(`unknown $type ${type} at ${path}`);
      })();
  return ok ? undefined : `${path}: expected ${type}, got ${show(value)}`;
}

/** What the server sent, read on demand in the framing the step expects. */
class Reader {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private closed = false;
  private closeCause: unknown;
  private wake: (() => void) | undefined;

  constructor(private readonly stepTimeout: number, private readonly signal: AbortSignal | undefined) {}

  readonly sink = {
    onData: (chunk: Uint8Array) => {
      if (chunk.length === 0 || this.closed) return;
      if (this.size + chunk.length > MAX_UNREAD) {
        // A server sending far more than any case reads: the case fails, and nothing more is kept.
        this.closed = true;
        this.closeCause = new Error(`the server sent more than ${MAX_UNREAD} bytes that the case did not read`);
        this.wake?.();
        return;
      }
      this.chunks.push(chunk);
      this.size += chunk.length;
      this.wake?.();
    },
    onDrain: () => undefined,
    onClose: (cause?: unknown) => {
      this.closed = true;
      this.closeCause = cause;
      this.wake?.();
    },
  };

  get pending(): number {
    return this.size;
  }

  /** Everything received and not yet read. */
  rest(): Uint8Array {
    return this.peek(this.size);
  }

  private peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      if (at >= n) break;
      const take = Math.min(c.length, n - at);
      out.set(c.subarray(0, take), at);
      at += take;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const out = this.peek(n);
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        this.chunks.shift();
        left -= c.length;
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.size -= n;
    return out;
  }

  /** Waits until `n` bytes are here; fails on a close or when the step's time is up. */
  async need(n: number, deadline: number, what: string): Promise<void> {
    while (this.size < n) {
      if (this.closed) throw new Mismatch(`expected ${what}, but the server closed the connection${this.size > 0 ? ` with ${this.size} bytes of a frame unfinished: ${shortHex(this.rest())}` : ''}${this.closeCause ? ` (${String((this.closeCause as Error).message ?? this.closeCause)})` : ''}`);
      await this.until(deadline, `expected ${what}, but nothing came within ${this.stepTimeout} ms${this.size > 0 ? ` (${this.size} bytes of it arrived: ${shortHex(this.rest())})` : ''}`);
    }
  }

  /** Waits until the server closes. */
  async waitClose(deadline: number): Promise<void> {
    while (!this.closed) {
      await this.until(deadline, `expected the server to close the connection, but it was still open after ${this.stepTimeout} ms${this.size > 0 ? `, having sent ${shortHex(this.rest())}` : ''}`);
    }
  }

  private until(deadline: number, timeoutMessage: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const left = deadline - Date.now();
      if (this.signal?.aborted) return reject(this.signal.reason);
      if (left <= 0) return reject(new Mismatch(timeoutMessage));
      const onAbort = () => done(this.signal!.reason);
      const timer = setTimeout(() => done(new Mismatch(timeoutMessage)), left);
      const done = (err?: unknown) => {
        clearTimeout(timer);
        this.signal?.removeEventListener('abort', onAbort);
        this.wake = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.wake = () => done();
      this.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private u32(offset: number): number {
    const b = this.peek(offset + 4);
    return ((b[offset]! << 24) >>> 0) + (b[offset + 1]! << 16) + (b[offset + 2]! << 8) + b[offset + 3]!;
  }

  async response(deadline: number): Promise<{ ret: number; body: Uint8Array }> {
    await this.need(8, deadline, 'a base-framing response');
    const ret = this.u32(0) | 0;
    const len = this.u32(4);
    if (len > MAX_READ) throw new Mismatch(`a response announces a body of ${len} bytes`);
    await this.need(8 + len, deadline, `a response body of ${len} bytes`);
    const bytes = this.take(8 + len);
    return { ret, body: bytes.subarray(8) };
  }

  async frame(deadline: number): Promise<{ head: Uint8Array; payload: Uint8Array; bytes: Uint8Array }> {
    await this.need(4, deadline, 'an extended frame');
    const headLen = this.u32(0);
    if (headLen > MAX_READ) throw new Mismatch(`a frame announces a head of ${headLen} bytes`);
    await this.need(8 + headLen, deadline, `an extended frame with a head of ${headLen} bytes`);
    const payloadLen = this.u32(4 + headLen);
    if (payloadLen > MAX_READ) throw new Mismatch(`a frame announces a payload of ${payloadLen} bytes`);
    await this.need(8 + headLen + payloadLen, deadline, 'the rest of an extended frame');
    const bytes = this.take(8 + headLen + payloadLen);
    return { head: bytes.subarray(4, 4 + headLen), payload: bytes.subarray(8 + headLen), bytes };
  }
}

function decodeOr(bytes: Uint8Array, what: string): unknown {
  try {
    return cbor.decode(bytes);
  } catch (err) {
    throw new Mismatch(`${what} is not a valid CBOR item (${(err as Error).message}): ${bytesToHex(bytes)}`);
  }
}

interface Received {
  head: unknown;
  payload: Uint8Array;
  bytes: Uint8Array;
}

function frameMismatch(expect: FrameExpect, got: Received): string | undefined {
  const m = mismatch(expect.head, got.head, 'head');
  if (m) return m;
  if (expect.empty && got.payload.length > 0) return `expected an empty payload, got ${bytesToHex(got.payload)}`;
  if (expect.payload !== undefined) {
    if (got.payload.length === 0) return `expected a payload matching ${show(expect.payload)}, got an empty payload`;
    return mismatch(expect.payload, decodeOr(got.payload, 'the payload'), 'payload');
  }
  return undefined;
}

const kindOf = (head: unknown): unknown => (Array.isArray(head) ? head[0] : undefined);

async function nextFrame(reader: Reader, deadline: number, skip: readonly number[]): Promise<Received> {
  for (;;) {
    const f = await reader.frame(deadline);
    const head = decodeOr(f.head, 'the head');
    const kind = kindOf(head);
    if (typeof kind === 'number' && skip.includes(kind)) continue;
    return { head, payload: f.payload, bytes: f.bytes };
  }
}

const describeFrame = (f: Received) => `${show(f.head)}${f.payload.length ? ` payload ${show(tryDecode(f.payload))}` : ''}`;

function tryDecode(bytes: Uint8Array): unknown {
  try {
    return cbor.decode(bytes);
  } catch {
    return `h'${bytesToHex(bytes)}'`;
  }
}

function repeatCount(expr: string | undefined, captures: Map<string, unknown>): number {
  if (expr === undefined) return 1;
  const m = /^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*(?:([+-])\s*(\d+))?\s*$/.exec(expr);
  if (!m) throw new TypeError(`bad repeat expression ${expr}`);
  const base = captures.get(m[1]!);
  const v = isPlainObject(base) ? base[m[2]!] : undefined;
  if (!isInteger(v)) throw new Mismatch(`repeat ${expr}: ${m[1]}.${m[2]} is not an integer (${show(v)})`);
  const n = Number(v) + (m[3] === '-' ? -1 : 1) * Number(m[4] ?? 0);
  if (n < 0 || n > 100_000) throw new Mismatch(`repeat ${expr} is ${n}: the vectors send at most 100000 copies`);
  return n;
}

async function runSteps(c: Case, transport: OpenTransport, reader: Reader, stepTimeout: number, onStep: (i: number) => void): Promise<void> {
  const captures = new Map<string, unknown>();
  for (let i = 0; i < c.steps.length; i++) {
    onStep(i);
    const step = c.steps[i]!;
    const deadline = Date.now() + stepTimeout;
    const skip = step.skip ?? [];
    if (step.send !== undefined) {
      const bytes = hexToBytes(step.send);
      const times = repeatCount(step.repeat, captures);
      for (let k = 0; k < times; k++) transport.write([bytes, EMPTY]);
    } else if (step.response) {
      const r = await reader.response(deadline);
      if (step.response.ret === 0) {
        if (r.ret !== 0) throw new Mismatch(`expected ret 0, got ret ${r.ret} with text ${show(new TextDecoder().decode(r.body))}`);
        const body = decodeOr(r.body, 'the body');
        const m = mismatch(step.response.body, body, 'body');
        if (m) throw new Mismatch(m);
        if (step.capture) captures.set(step.capture, body);
      } else {
        if (r.ret === 0) throw new Mismatch(`expected an error (ret != 0), got ret 0 with ${show(tryDecode(r.body))}`);
        let text: string;
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(r.body);
        } catch {
          throw new Mismatch(`the error text is not valid UTF-8: ${bytesToHex(r.body)}`);
        }
        if (step.response.text !== undefined) {
          const m = mismatch(step.response.text, text, 'text');
          if (m) throw new Mismatch(m);
        }
      }
    } else if (step.frame) {
      const f = await nextFrame(reader, deadline, skip);
      const m = frameMismatch(step.frame, f);
      if (m) throw new Mismatch(`${m} (the frame: ${describeFrame(f)})`);
    } else if (step.frames) {
      const left = [...step.frames];
      while (left.length > 0) {
        const f = await nextFrame(reader, deadline, skip);
        const at = left.findIndex((e) => frameMismatch(e, f) === undefined);
        if (at < 0) throw new Mismatch(`the frame ${describeFrame(f)} matches none of the ${left.length} still expected: ${left.map((e) => show(e.head)).join(', ')}`);
        left.splice(at, 1);
      }
    } else if (step.close) {
      await reader.waitClose(deadline);
      while (reader.pending > 0) {
        if (skip.length === 0) throw new Mismatch(`expected the close with nothing more, got ${shortHex(reader.rest())}`);
        const f = await nextFrame(reader, deadline, skip).catch(() => {
          throw new Mismatch(`expected the close with nothing more, got ${shortHex(reader.rest())}`);
        });
        throw new Mismatch(`expected the close with nothing more, got ${describeFrame(f)}`);
      }
    } else {
      throw new TypeError(`case ${c.name}, step ${i}: no send, response, frame, frames or close`);
    }
  }
}

/** Runs one case on a transport of its own; never throws for a server that fails it. */
export async function runCase(c: Case, dial: Dialer, options: RunOptions = {}): Promise<CaseResult> {
  const stepTimeout = options.stepTimeout ?? 5000;
  let at = -1;
  let transport: OpenTransport;
  try {
    transport = await dial(options.signal ?? new AbortController().signal);
  } catch (err) {
    return { name: c.name, ok: false, difference: `could not connect: ${(err as Error).message}` };
  }
  const reader = new Reader(stepTimeout, options.signal);
  transport.attach(reader.sink);
  try {
    await runSteps(c, transport, reader, stepTimeout, (i) => (at = i));
    return { name: c.name, ok: true };
  } catch (err) {
    if (!(err instanceof Mismatch)) throw err;
    const note = c.steps[at]?.note;
    return { name: c.name, ok: false, step: at, ...(note === undefined ? {} : { note }), difference: err.message };
  } finally {
    transport.destroy();
  }
}

/** Runs the cases one after the other (each on a fresh connection), reporting each as it ends. */
export async function runVectors(vectors: Vectors, dial: Dialer, options: RunOptions & { only?: (name: string) => boolean; onResult?: (r: CaseResult) => void } = {}): Promise<CaseResult[]> {
  if (vectors.format !== 1) throw new TypeError(`vectors of format ${String(vectors.format)}: this runner reads format 1`);
  const results: CaseResult[] = [];
  for (const c of vectors.cases) {
    if (options.only && !options.only(c.name)) continue;
    const r = await runCase(c, dial, options);
    results.push(r);
    options.onResult?.(r);
  }
  return results;
}
