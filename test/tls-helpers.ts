/**
 * Throwaway certificates for the TLS tests, made with scripts/make-certs.sh
 * (the README's helper, so it is tested too) in a temp dir removed after
 * the test file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

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
