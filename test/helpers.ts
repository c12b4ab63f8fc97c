/** Test helpers: temp-dir unix sockets, raw base-framing exchanges over real sockets. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { Address } from '../src/node/address.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh unix socket path in its own temp dir (removed after the test file). */
export function tempSocket(name = 's.sock'): string {
  const dir = mkdtempSync(join(tmpdir(), 'ipcbor-t-'));
  dirs.push(dir);
  return join(dir, name);
}

export function rawConnect(address: string | Address): Promise<Socket> {
  const a = typeof address === 'string' ? address : address.kind === 'unix' ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
  return new Promise((resolve, reject) => {
    const s = a.startsWith('unix:')
      ? createConnection(a.slice(5))
      : createConnection({ host: a.slice(4, a.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(a.slice(a.lastIndexOf(':') + 1)) });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Collects everything a raw socket receives; `read(n)` waits for n more bytes. */
export class RawReader {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }
  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.buf.length} of ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} bytes (have ${this.buf.length})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  /** One base-framing response: ret and body. */
  async response(): Promise<{ ret: number; body: Buffer; bytes: Buffer }> {
    const head = await this.read(8);
    const body = await this.read(head.readUInt32BE(4));
    return { ret: head.readInt32BE(0), body, bytes: Buffer.concat([head, body]) };
  }
  /** Resolves when the peer closed the connection. */
  async closed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

/**
 * A program some tests need that `npm test` cannot install (a C compiler,
 * openssl; python3 with cbor2 has test/python.ts). Where it is missing,
 * those tests are skipped and say why, unless the environment variable
 * `requireVar` is 1 (as .ci/run sets it): then they run, and fail.
 */
export interface Prerequisite {
  /** Why it cannot be used here, or undefined when it can. */
  readonly missing: string | undefined;
  /** The `skip` option for node:test: the reason, or false (present, or required). */
  readonly skip: string | false;
  /** Fails with the reason when it is missing: call it before using the program. */
  check(): void;
}

/** `probe` returns why the program cannot be used, or undefined when it can; it runs once, here. */
export function prerequisite(requireVar: string, probe: () => string | undefined): Prerequisite {
  const missing = probe();
  const required = process.env[requireVar] === '1';
  return {
    missing,
    skip: missing !== undefined && !required ? `${missing}; ${requireVar}=1 makes this a failure` : false,
    check() {
      if (missing !== undefined) throw new Error(`${missing}, and ${requireVar}=1 requires it`);
    },
  };
}
