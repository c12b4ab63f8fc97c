/**
 * The raw baseline client: plain `net`, the base framing, no CBOR. The
 * payload is encoded once up front, so what is measured is framing and the
 * socket only. Answers come back in request order, so pipelined calls
 * (W2) are matched by a FIFO, as a base-framing client must.
 *
 * It returns a promise per call like ipcbor's `call`, so both run under the
 * same drivers; frames written in one tick leave in one syscall
 * (cork, and uncork on the next tick).
 */
import { createConnection, type Socket } from 'node:net';
import { ByteQueue } from './byte-queue.js';

interface Waiter {
  resolve(body: Buffer): void;
  reject(err: Error): void;
}

/** Payloads up to this size are copied behind their header (one write); larger ones go as their own write. */
const COPY_LIMIT = 16 * 1024;

export class RawClient {
  private readonly queue = new ByteQueue();
  private readonly waiting: Waiter[] = [];
  private corked = false;
  private readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      const err = new Error('raw connection closed');
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  /** Send one request; resolves with the answer's body. */
  call(method: Buffer, payload: Uint8Array): Promise<Buffer> {
    const s = this.socket;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(() => {
        this.corked = false;
        s.uncork();
      });
    }
    const head = 8 + method.length;
    if (payload.length <= COPY_LIMIT) {
      const frame = Buffer.allocUnsafe(head + payload.length);
      frame.writeUInt32BE(method.length, 0);
      method.copy(frame, 4);
      frame.writeUInt32BE(payload.length, 4 + method.length);
      frame.set(payload, head);
      s.write(frame);
    } else {
      const frame = Buffer.allocUnsafe(head);
      frame.writeUInt32BE(method.length, 0);
      method.copy(frame, 4);
      frame.writeUInt32BE(payload.length, 4 + method.length);
      s.write(frame);
      s.write(payload);
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private receive(chunk: Buffer): void {
    const q = this.queue;
    q.push(chunk);
    for (;;) {
      if (q.length < 8) return;
      const bodyLen = q.u32(4);
      if (q.length < 8 + bodyLen) return;
      const ret = q.u32(0) | 0;
      q.skip(8);
      const body = q.take(bodyLen);
      const w = this.waiting.shift();
      if (!w) throw new Error('raw client: answer to no request');
      if (ret === 0) w.resolve(body);
      else w.reject(new Error(`raw server error: ${body.toString()}`));
    }
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}
