/**
 * scripts/make-certs.sh keeps an existing CA unless told to replace it
 * (--force or FORCE=1): replacing it would untrust every certificate the
 * old one signed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAKE_CERTS, openssl } from '../tls-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ipcbor-make-certs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [MAKE_CERTS, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}
const read = (d: string, f: string) => readFileSync(join(d, f), 'utf8');

describe('make-certs.sh and an existing CA', { skip: openssl.skip }, () => {
  it('refuses to replace a CA (both ways of making one), says why, and leaves it as it was', () => {
    const d = join(dir, 'keep');
    assert.equal(run([d]).status, 0);
    const ca = read(d, 'ca.pem');
    const key = read(d, 'ca.key');
    const server = read(d, 'server.pem');
    for (const args of [[d], ['ca', d], ['ca', d, 'another name']]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /already has a CA.*--force.*FORCE=1/s);
    }
    assert.equal(read(d, 'ca.pem'), ca);
    assert.equal(read(d, 'ca.key'), key);
    assert.equal(read(d, 'server.pem'), server);
    // Certificates signed by the CA it kept are still made.
    assert.equal(run(['client', d, 'bob']).status, 0);
  });

  it('a CA key alone is enough to refuse', () => {
    const d = join(dir, 'key-only');
    assert.equal(run(['ca', d]).status, 0);
    rmSync(join(d, 'ca.pem'));
    assert.equal(run(['ca', d]).status, 2);
  });

  it('replaces it with --force, anywhere on the line, or FORCE=1', () => {
    const d = join(dir, 'force');
    assert.equal(run(['ca', d]).status, 0);
    let ca = read(d, 'ca.pem');
    for (const [args, env] of [[['--force', 'ca', d], {}], [['ca', d, '--force'], {}], [['ca', d], { FORCE: '1' }], [[d, '--force'], {}]] as const) {
      const r = run([...args], env);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      const now = read(d, 'ca.pem');
      assert.notEqual(now, ca, `${args.join(' ')} replaced the CA`);
      ca = now;
    }
    // FORCE=0 is not asking.
    assert.equal(run(['ca', d], { FORCE: '0' }).status, 2);
  });
});
