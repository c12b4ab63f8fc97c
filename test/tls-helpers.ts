/**
 * Throwaway certificates for the TLS tests, made with scripts/make-certs.sh
 * (the README's helper, so it is tested too) in a temp dir removed after
 * the test file. That needs the openssl command: without it the TLS tests
 * are skipped (`skip: openssl.skip`), unless IPCBOR_REQUIRE_OPENSSL=1 (as
 * .ci/run sets), where they fail instead.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { prerequisite } from './helpers.js';

/** The openssl command line, which scripts/make-certs.sh runs. */
export const openssl = prerequisite('IPCBOR_REQUIRE_OPENSSL', () => {
  const r = spawnSync('openssl', ['version'], { stdio: 'ignore' });
  if (r.error) return `the openssl command is not installed (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}; Debian: openssl), the TLS tests need it for their certificates`;
  if (r.status !== 0) return `\`openssl version\` failed (status ${String(r.status)}), the TLS tests need openssl for their certificates`;
  return undefined;
});

export const MAKE_CERTS = fileURLToPath(new URL('../../scripts/make-certs.sh', import.meta.url));

export interface Pair {
  cert: string;
  key: string;
  /** Files, for programs. */
  certFile: string;
  keyFile: string;
}

export interface Certs {
  dir: string;
  /** The private CA, and its file. */
  ca: string;
  caFile: string;
  /** Server: DNS:localhost, IP:127.0.0.1, IP:::1. */
  server: Pair;
  /** Server: IP:127.0.0.1 only. */
  ipOnly: Pair;
  /** Server: DNS:localhost only. */
  dnsOnly: Pair;
  /** Server: DNS:other.example only. */
  wrongName: Pair;
  /** Server: all the right names, expired. */
  expired: Pair;
  /** Client CN=alice, signed by the private CA. */
  alice: Pair;
  /** Client CN=old, expired. */
  expiredClient: Pair;
  /** Another CA, and a server and client it signed. */
  otherCa: string;
  otherServer: Pair;
  mallory: Pair;
}

function run(args: string[], env: Record<string, string> = {}): void {
  execFileSync('bash', [MAKE_CERTS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

function pair(dir: string, name: string): Pair {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

let made: Certs | undefined;
// Registered here, at the top level of the test file that imports this:
// registered from inside a hook, it would run when that hook's scope ends.
after(() => {
  if (made) rmSync(made.dir, { recursive: true, force: true });
});

/** Make (once per test file) the certificates the TLS tests use. */
export function certs(): Certs {
  if (made) return made;
  openssl.check();
  const dir = mkdtempSync(join(tmpdir(), 'ipcbor-tls-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  run([a]);
  run(['server', a, 'ip-only', 'IP:127.0.0.1']);
  run(['server', a, 'dns-only', 'DNS:localhost']);
  run(['server', a, 'wrong-name', 'DNS:other.example']);
  run(['server', a, 'expired', 'DNS:localhost', 'IP:127.0.0.1'], { DAYS: '-1' });
  run(['client', a, 'alice']);
  run(['client', a, 'old'], { DAYS: '-1' });
  run(['ca', b, 'another CA']);
  run(['server', b, 'server', 'DNS:localhost', 'IP:127.0.0.1']);
  run(['client', b, 'mallory']);
  made = {
    dir,
    ca: readFileSync(join(a, 'ca.pem'), 'utf8'),
    caFile: join(a, 'ca.pem'),
    server: pair(a, 'server'),
    ipOnly: pair(a, 'ip-only'),
    dnsOnly: pair(a, 'dns-only'),
    wrongName: pair(a, 'wrong-name'),
    expired: pair(a, 'expired'),
    alice: pair(a, 'alice'),
    expiredClient: pair(a, 'old'),
    otherCa: readFileSync(join(b, 'ca.pem'), 'utf8'),
    otherServer: pair(b, 'server'),
    mallory: pair(b, 'mallory'),
  };
  return made;
}

/**
 * How a server cut a connection off, as its peer sees it: a clean close
 * (FIN), or a reset (ECONNRESET, or EPIPE when the peer was writing as the
 * reset came in). A server that closes a socket with unread bytes in it
 * sends a reset, so which one a peer sees that is still writing depends on
 * timing: both are correct, both mean "the server cut us". Anything else
 * fails, and so does a socket still open after `guardMs` (a bound on the
 * wait, far above any deadline under test, not a race with it).
 */
export async function cutByServer(socket: Socket, guardMs = 30_000): Promise<{ how: 'closed' | 'reset'; ms: number }> {
  const started = Date.now();
  let error: NodeJS.ErrnoException | undefined;
  socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e));
  let guarded = false;
  const guard = setTimeout(() => {
    guarded = true;
    socket.destroy();
  }, guardMs);
  if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve));
  clearTimeout(guard);
  const ms = Date.now() - started;
  if (guarded) throw new Error(`the server had not cut the connection after ${guardMs} ms`);
  error ??= (socket.errored as NodeJS.ErrnoException | null) ?? undefined;
  if (error === undefined) return { how: 'closed', ms };
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return { how: 'reset', ms };
  throw new Error(`the connection ended with ${error.code ?? error.message}, not a close or a reset by the server`, { cause: error });
}
