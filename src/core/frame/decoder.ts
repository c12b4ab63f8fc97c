/**
 * The streaming frame decoder: feed it chunks of any size, it calls the sink
 * once per complete frame. It owns all partial-frame state and does no I/O.
 * Every declared length is checked against its limit as soon as it is read,
 * before a byte of what it announces is buffered. See encoder.ts for the
 * frame layouts.
 */
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_METHOD_BYTES } from '../constants.js';
import { IpcborError } from '../errors.js';
import { ChunkQueue } from './chunks.js';

/** What the next bytes are: base-framing requests (server side), base-framing responses (client side) or extended frames. */
export type DecoderMode = 'request' | 'response' | 'extended';

export interface FrameSink {
  request?(method: string, payload: Uint8Array): void;
  response?(ret: number, body: Uint8Array): void;
  extended?(head: Uint8Array, payload: Uint8Array): void;
}

export interface FrameLimits {
  /** Longest method name, in UTF-8 bytes. Default 256. */
  maxMethodBytes?: number;
  /** Largest payload or body of one frame, in bytes. Default 16 MiB. */
  maxFrameBytes?: number;
}

/** Largest head of an extended frame (method name, error code and text). */
export const MAX_HEAD_BYTES = 64 * 1024;

const enum State {
  Head,
  Method,
  Body,
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class FrameDecoder {
  /** Switch between frames (e.g. from the sink callback after a negotiation). */
  mode: DecoderMode;
  readonly maxMethodBytes: number;
  readonly maxFrameBytes: number;
  private readonly sink: FrameSink;
  private readonly queue = new ChunkQueue();
  private state = State.Head;
  private need = 0;
  private ret = 0;
  private method = '';
  private head: Uint8Array = new Uint8Array(0);
  private failure: IpcborError | undefined;
  private held = false;
  private draining = false;
  /** Frames delivered so far (a frame timer uses it to see progress). */
  delivered = 0;

  constructor(mode: DecoderMode, sink: FrameSink, limits: FrameLimits = {}) {
    this.mode = mode;
    this.sink = sink;
    this.maxMethodBytes = limits.maxMethodBytes ?? DEFAULT_MAX_METHOD_BYTES;
    this.maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes received and not yet part of a delivered frame. */
  get buffered(): number {
    return this.queue.length;
  }

  /** What the decoder's bytes cost to hold (the chunks they are in, whole): what a connection is charged for them. */
  get heldBytes(): number {
    return this.queue.heldBytes;
  }

  /** Memory the decoder keeps for bytes not yet delivered (0 when idle). */
  get retainedBytes(): number {
    return this.queue.retainedBytes;
  }

  /** True between frames: nothing of a started frame is buffered. */
  get idle(): boolean {
    return this.state === State.Head && this.queue.length === 0;
  }

  /**
   * Feed bytes. Frames completed by them are delivered to the sink before
   * this returns. A malformed frame throws an IpcborError; the decoder is
   * then dead and every later push throws the same error.
   */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    // From inside a sink callback: the loop running takes it, after what it has.
    if (this.directing) {
      (this.late ??= []).push(chunk);
      return;
    }
    if (this.draining) {
      this.queue.push(chunk);
      return;
    }
    if (this.mode === 'extended' && this.state === State.Head && this.queue.length === 0 && !this.held) {
      this.direct(chunk);
      if (this.failure || this.queue.length === 0) return;
    } else {
      this.queue.push(chunk);
    }
    this.drain();
  }

  /** Chunks pushed from inside direct()'s sink calls, in order. */
  private late: Uint8Array[] | undefined;
  private directing = false;

  /** What direct() did not deliver waits in the queue: the rest of its chunk (held whole), then the chunks pushed meanwhile. */
  private keepRest(chunk: Uint8Array, at: number): void {
    if (at < chunk.length) {
      this.queue.push(chunk);
      this.queue.skip(at);
    }
    const late = this.late;
    this.late = undefined;
    if (late !== undefined) for (const c of late) this.queue.push(c);
  }

  /**
   * The usual case, without the queue: extended frames that lie whole in a
   * chunk arriving between frames are delivered straight from it, as views.
   * Stops at the first frame not whole in it, or when the sink holds,
   * discards or switches the mode; what it did not deliver (and chunks
   * pushed from inside the sink meanwhile) then waits in the queue, in
   * order (keepRest). Limits are checked as in drainFrames, as soon as each
   * length is read.
   */
  private direct(chunk: Uint8Array): void {
    const n = chunk.length;
    const buffer = chunk.buffer;
    const base = chunk.byteOffset;
    let at = 0;
    this.draining = true;
    this.directing = true;
    try {
      while (n - at >= 4) {
        const headLen = ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0;
        if (headLen > MAX_HEAD_BYTES) throw this.fail('IPCBOR_ERR_BAD_FRAME', `frame head of ${headLen} bytes is over the limit of ${MAX_HEAD_BYTES} bytes`);
        const lenAt = at + 4 + headLen;
        if (n - lenAt < 4) break;
        const bodyLen = this.checkBody(((chunk[lenAt]! << 24) | (chunk[lenAt + 1]! << 16) | (chunk[lenAt + 2]! << 8) | chunk[lenAt + 3]!) >>> 0);
        const end = lenAt + 4 + bodyLen;
        if (end > n) break;
        const head = new Uint8Array(buffer, base + at + 4, headLen);
        const body = new Uint8Array(buffer, base + lenAt + 4, bodyLen);
        at = end;
        this.delivered++;
        this.sink.extended?.(head, body);
        if (this.held || this.failure || this.mode !== 'extended') break;
      }
    } finally {
      this.draining = false;
      this.directing = false;
      // Also when the sink threw: the frames after its own are not lost.
      if (this.failure === undefined) this.keepRest(chunk, at);
      else this.late = undefined;
    }
  }

  /**
   * Stop delivering frames (backpressure): bytes pushed meanwhile are kept.
   * Takes effect between frames, also from inside a sink callback.
   */
  hold(): void {
    this.held = true;
  }

  /** Deliver again, starting with the frames held back. May throw like push. */
  release(): void {
    this.held = false;
    if (this.failure) throw this.failure;
    // From inside a sink callback the running loop carries on by itself.
    if (!this.draining) this.drain();
  }

  /** Drop every byte held and take no more (the connection is being closed): a dead decoder holds no memory. */
  discard(): void {
    this.failure ??= new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection is closing');
    this.queue.skip(this.queue.length);
    this.state = State.Head;
  }

  private fail(code: 'IPCBOR_ERR_METHOD_TOO_LONG' | 'IPCBOR_ERR_FRAME_TOO_LARGE' | 'IPCBOR_ERR_BAD_FRAME', message: string): IpcborError {
    this.failure = new IpcborError(code, message);
    return this.failure;
  }

  private drain(): void {
    this.draining = true;
    try {
      this.drainFrames();
    } finally {
      this.draining = false;
    }
  }

  private drainFrames(): void {
    const q = this.queue;
    for (;;) {
      if (this.held) return;
      switch (this.state) {
        case State.Head: {
          const headLen = this.mode === 'response' ? 8 : 4;
          if (q.length < headLen) return;
          if (this.mode === 'response') {
            this.ret = q.peekU32() | 0;
            q.skip(4);
            this.need = this.checkBody(q.peekU32());
            q.skip(4);
            this.state = State.Body;
            break;
          }
          const len = q.peekU32();
          if (this.mode === 'request' && len > this.maxMethodBytes) {
            throw this.fail('IPCBOR_ERR_METHOD_TOO_LONG', `method name of ${len} bytes is over the limit of ${this.maxMethodBytes} bytes`);
          }
          if (this.mode === 'extended' && len > MAX_HEAD_BYTES) {
            throw this.fail('IPCBOR_ERR_BAD_FRAME', `frame head of ${len} bytes is over the limit of ${MAX_HEAD_BYTES} bytes`);
          }
          q.skip(4);
          this.need = len + 4;
          this.state = State.Method;
          break;
        }
        case State.Method: {
          if (q.length < this.need) return;
          const raw = q.take(this.need - 4);
          if (this.mode === 'extended') {
            this.head = raw;
          } else {
            try {
              this.method = utf8.decode(raw);
            } catch {
              throw this.fail('IPCBOR_ERR_BAD_FRAME', 'method name is not valid UTF-8');
            }
          }
          this.need = this.checkBody(q.peekU32());
          q.skip(4);
          this.state = State.Body;
          break;
        }
        case State.Body: {
          if (q.length < this.need) return;
          const body = q.take(this.need);
          this.state = State.Head;
          this.deliver(body);
          break;
        }
      }
    }
  }

  private checkBody(len: number): number {
    if (len > this.maxFrameBytes) {
      throw this.fail('IPCBOR_ERR_FRAME_TOO_LARGE', `frame of ${len} bytes is over the limit of ${this.maxFrameBytes} bytes`);
    }
    return len;
  }

  private deliver(body: Uint8Array): void {
    this.delivered++;
    switch (this.mode) {
      case 'request':
        this.sink.request?.(this.method, body);
        break;
      case 'response':
        this.sink.response?.(this.ret, body);
        break;
      case 'extended':
        this.sink.extended?.(this.head, body);
        break;
    }
  }
}
