/** Service names and the runtime directory: resolution (nothing created; the home fallback looks at the home directory). */
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { addressesFromArgs, addressFromArgs, formatAddress, parseAddress } from '../../src/node/address.js';
import { runtimeDir, socketPathFor } from '../../src/node/rundir.js';
import { IpcborError } from '../../src/core/errors.js';

const invalid = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof IpcborError && e.code === 'IPCBOR_ERR_INVALID_ADDRESS');

describe('service names', () => {
  let saved: Record<string, string | undefined>;
  beforeEach(() => {
    saved = { IPCBOR_RUNDIR: process.env.IPCBOR_RUNDIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR, HOME: process.env.HOME };
    process.env.IPCBOR_RUNDIR = '/run/test-ipcbor';
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('resolves a bare name, name:NAME and --name NAME to <rundir>/<name>.sock, and formats it back as the name', () => {
    const want = { kind: 'unix', path: '/run/test-ipcbor/timer.sock', name: 'timer' };
    assert.deepEqual(parseAddress('timer'), want);
    assert.deepEqual(parseAddress('name:timer'), want);
    assert.deepEqual(addressFromArgs(['--name', 'timer', '-v']), { address: want, rest: ['-v'] });
    assert.deepEqual(addressesFromArgs(['--name', 'a.b_c-1', 'unix:/x', 'word']).addresses.map(formatAddress), ['a.b_c-1', 'unix:/x']);
    assert.equal(formatAddress(parseAddress('timer')), 'timer');
    assert.deepEqual(parseAddress(formatAddress(parseAddress('timer'))), want);
    assert.equal(socketPathFor('greeter'), '/run/test-ipcbor/greeter.sock');
  });

  it('takes a bare word that holds a / or ends in .sock for a socket path, not a name', () => {
    assert.deepEqual(parseAddress('timer.sock'), { kind: 'unix', path: 'timer.sock' });
    assert.deepEqual(parseAddress('./timer'), { kind: 'unix', path: './timer' });
    assert.deepEqual(parseAddress('a/b'), { kind: 'unix', path: 'a/b' });
    assert.deepEqual(parseAddress('/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
    assert.equal(formatAddress(parseAddress('timer.sock')), 'unix:timer.sock');
    // Names stay names, dots and all; a URL is neither.
    assert.equal(parseAddress('timer.v2').kind === 'unix' && (parseAddress('timer.v2') as { name?: string }).name, 'timer.v2');
    invalid(() => parseAddress('http://x/y.sock'));
    // name: takes a name, even one that ends in .sock.
    assert.deepEqual(parseAddress('name:x.sock'), { kind: 'unix', path: '/run/test-ipcbor/x.sock.sock', name: 'x.sock' });
  });

  it('keeps unix: and tcp: parsing as it was', () => {
    assert.deepEqual(parseAddress('unix:/tmp/a.sock'), { kind: 'unix', path: '/tmp/a.sock' });
    assert.deepEqual(parseAddress('tcp:localhost:1'), { kind: 'tcp', host: 'localhost', port: 1 });
    assert.equal(formatAddress(parseAddress('unix:/tmp/a.sock')), 'unix:/tmp/a.sock');
  });

  it('refuses what is not a name', () => {
    for (const bad of ['.hidden', '-x', 'x'.repeat(65), 'a b', 'name:', 'name:a/b', 'name:../x', '']) invalid(() => parseAddress(bad));
    invalid(() => addressFromArgs(['--name']));
    invalid(() => addressFromArgs(['--name', '..']));
    invalid(() => socketPathFor('a/b'));
  });

  it('checks the socket path length of a name up front', () => {
    process.env.IPCBOR_RUNDIR = `/tmp/${'d'.repeat(100)}`;
    invalid(() => parseAddress('timer'));
    invalid(() => addressFromArgs(['--name', 'timer']));
  });

  it('finds the runtime directory: $IPCBOR_RUNDIR, else $XDG_RUNTIME_DIR/ipcbor, else <home>/.ipcbor/run, else <tmpdir>/ipcbor-<uid>', () => {
    assert.equal(runtimeDir(), '/run/test-ipcbor');
    delete process.env.IPCBOR_RUNDIR;
    process.env.XDG_RUNTIME_DIR = '/run/user/4242';
    assert.equal(runtimeDir(), '/run/user/4242/ipcbor');
    delete process.env.XDG_RUNTIME_DIR;
    const home = mkdtempSync(join(tmpdir(), 'ipcbor-home-'));
    try {
      process.env.HOME = home;
      assert.equal(runtimeDir(), join(home, '.ipcbor', 'run'));
      assert.equal(existsSync(join(home, '.ipcbor')), false, 'nothing is created by resolving');
      // No home of one's own: the shared temporary directory, by uid.
      for (const none of [join(home, 'missing'), 'relative/home']) {
        process.env.HOME = none;
        assert.equal(runtimeDir(), join(tmpdir(), `ipcbor-${process.getuid!()}`));
      }
      if (process.getuid!() === 0) {
        process.env.HOME = home;
        chownSync(home, 1, 1);
        assert.equal(runtimeDir(), join(tmpdir(), 'ipcbor-0'), 'a home owned by another user is not used');
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    process.env.IPCBOR_RUNDIR = 'relative/dir';
    invalid(() => runtimeDir());
  });
});
