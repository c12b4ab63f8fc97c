/**
 * Helpers for the extended-protocol tests: latches, error assertions, and a
 * raw extended-protocol peer that speaks the framing by hand (hello, heads,
 * payloads) so tests can see exactly which frames the server sends, and can
 * stop reading like a slow subscriber.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { IpcborError } from '../src/index.js';
import { cbor } from '../src/core/codec/cbor.js';
import { FrameDecoder } from '../src/core/frame/decoder.js';
import { encodeExtended, encodeRequest } from '../src/core/frame/encoder.js';
import { rawConnect } from './helpers.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** A promise with its resolve/reject outside: the latch a handler opens for the test (or the other way round). */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** `p` rejects with an IpcborError of this code; returns it. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<IpcborError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IpcborError, `expected an IpcborError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** The code of an abort reason (handlers see an IpcborError saying why their signal fired). */
export function codeOf(reason: unknown): string {
  assert.ok(reason instanceof IpcborError, `expected an IpcborError reason, got ${String(reason)}`);
  return reason.code;
}

/**
 * Wait until `cond()` holds. Not a timing assumption: it only bounds how
 * long a test may wait for something that must happen.
 */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Let pending microtasks run, and nothing else (no I/O, no timers). */
export async function microtasks(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await null;
}

/** A "resource" that handlers can wait on and that aborts with ctx.signal. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export interface RawFrame {
  /** The decoded head: `[kind, ...]`. */
  head: unknown[];
  payload: Uint8Array;
}

export interface HelloOffer {
  version: number;
  maxFrameBytes: number;
  window: number;
}

/**
 * An extended-protocol peer written from docs/PROTOCOL.md §6–§7 with the
 * frame decoder only: the hello is base-framed, everything after it is
 * `[u32 head_len][head][u32 payload_len][payload]`.
 */
export class RawExtended {
  readonly frames: RawFrame[] = [];
  /** Bytes received so far. */
  bytes = 0;
  ended = false;
  helloAnswer: { ret: number; body: Uint8Array } | undefined;
  private waiters: (() => void)[] = [];
  private readonly decoder: FrameDecoder;

  private constructor(readonly socket: Socket) {
    this.decoder = new FrameDecoder('response', {
      response: (ret, body) => {
        this.helloAnswer = { ret, body };
        // Everything after the hello answer is extended framing.
        if (ret === 0) this.decoder.mode = 'extended';
        this.wake();
      },
      extended: (head, payload) => {
        this.frames.push({ head: cbor.decode(head) as unknown[], payload });
        this.wake();
      },
    });
    socket.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      this.decoder.push(chunk);
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** Connect, send the hello, and wait for its answer. */
  static async open(address: string, offer: HelloOffer = { version: 1, maxFrameBytes: 16 * 1024 * 1024, window: 64 }): Promise<RawExtended> {
    const raw = new RawExtended(await rawConnect(address));
    for (const part of encodeRequest('$ipcbor.hello', cbor.encode(offer))) raw.socket.write(part);
    await raw.until(() => raw.helloAnswer !== undefined, 'the hello answer');
    assert.equal(raw.helloAnswer!.ret, 0, 'the server accepts the hello');
    return raw;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.ended) assert.fail(`connection closed while waiting for ${what}`);
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Send one extended frame; `payload` is CBOR-encoded unless absent. */
  send(head: unknown[], ...payload: [] | [unknown]): void {
    const body = payload.length === 0 ? undefined : cbor.encode(payload[0]);
    for (const part of encodeExtended(cbor.encode(head), body)) this.socket.write(part);
  }

  /** The next frame received (in order). */
  async next(timeoutMs = 5000): Promise<RawFrame> {
    await this.until(() => this.frames.length > 0, 'a frame', timeoutMs);
    return this.frames.shift()!;
  }

  /** Resolves once the server closed the connection. */
  async closed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) assert.fail('the connection is still open');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Stop reading: the socket's buffers fill and the server's writes back up. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Decode a frame's payload. */
export function payloadOf(frame: RawFrame): unknown {
  return frame.payload.length === 0 ? undefined : cbor.decode(frame.payload);
}
