/**
 * Loading the peers ipcbor is compared with. They live in their own
 * package (bench/peers/package.json, installed with `npm run bench:peers`,
 * that is `npm ci --ignore-scripts`), not in the library's dependencies, and
 * are loaded at run time with a require rooted there: the library's build
 * and tests never need them, and a peer that is missing or does not load
 * shows up in the bench output as "unavailable: why".
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/peers in the source tree (this file runs as dist/bench/peers/load.js). */
export const PEERS_DIR = fileURLToPath(new URL('../../../bench/peers/', import.meta.url));

const req = createRequire(join(PEERS_DIR, 'package.json'));

/** require() a peer package from bench/peers/node_modules. */
export function peerRequire<T>(name: string): T {
  return req(name) as T;
}

/** The installed version of a peer package, or undefined when it is not installed. */
export function peerVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(PEERS_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * How JSON peers carry W3's byte payload: as base64 text in an object,
 * encoded on every call and decoded from every answer on the client (the
 * server echoes the text). JSON has no byte strings; this is the usual way.
 */
export function toJson(params: unknown): unknown {
  return params instanceof Uint8Array ? { base64: Buffer.from(params.buffer, params.byteOffset, params.byteLength).toString('base64') } : params;
}

export function fromJson(value: unknown): unknown {
  const b = (value as { base64?: unknown } | null)?.base64;
  return typeof b === 'string' ? new Uint8Array(Buffer.from(b, 'base64')) : value;
}

/** Answers of a connection that come back in request order (one FIFO of waiters). */
export class Fifo {
  private readonly waiting: { resolve(v: unknown): void; reject(e: Error): void }[] = [];
  wait(): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
  resolve(v: unknown): void {
    const w = this.waiting.shift();
    if (!w) throw new Error('an answer to no request');
    w.resolve(v);
  }
  fail(e: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}
