/**
 * Loading the peers ipcbor is compared with. They live in their own
 * package (bench/peers/package.json, installed with `npm run bench:peers`,
 * that is `npm ci --ignore-scripts`), not in the library's dependencies, and
 * are loaded at run time with a require (or, for an ES module, an import)
 * rooted there: the library's build and tests never need them, and a peer
 * that is missing or does not load shows up in the bench output as
 * "unavailable: why".
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** bench/peers in the source tree (this file runs as dist/bench/peers/load.js). */
export const PEERS_DIR = fileURLToPath(new URL('../../../bench/peers/', import.meta.url));

const req = createRequire(join(PEERS_DIR, 'package.json'));

/** require() a peer package from bench/peers/node_modules. */
export function peerRequire<T>(name: string): T {
  return req(name) as T;
}

/** import() a peer package that is an ES module (node-ipc 14), resolved from bench/peers/node_modules. */
export async function peerImport<T>(name: string): Promise<T> {
  return (await import(pathToFileURL(req.resolve(name)).href)) as T;
}

interface Manifest {
  version?: string;
  engines?: { node?: string };
}

function manifest(name: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(join(PEERS_DIR, 'node_modules', name, 'package.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** The installed version of a peer package, or undefined when it is not installed. */
export function peerVersion(name: string): string | undefined {
  return manifest(name)?.version;
}

const numbers = (v: string) => v.replace(/^v/, '').split('.').map((x) => Number.parseInt(x, 10) || 0);

/** Whether version a is below b (x.y.z, numerically). */
function below(a: string, b: string): boolean {
  const [x, y] = [numbers(a), numbers(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
}

/**
 * The package's declared Node floor (its engines field, a ">=x.y.z") when
 * this Node is below it, else undefined: the report says the package ran
 * outside what it supports (every cell still checks its echo).
 */
export function peerEnginesFloor(name: string, node = process.version): string | undefined {
  const floor = /^\s*>=\s*v?(\d+(?:\.\d+){0,2})\s*$/.exec(manifest(name)?.engines?.node ?? '')?.[1];
  return floor !== undefined && below(node, floor) ? floor : undefined;
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

/** This process's limit on open files (the shell's `ulimit -n`, which children inherit), or undefined if unknown. */
export function openFileLimit(): number | undefined {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = Number.parseInt(r.stdout ?? '', 10);
  return r.status === 0 && Number.isFinite(n) ? n : undefined;
}
