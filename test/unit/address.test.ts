import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressesFromArgs, addressFromArgs, formatAddress, isLoopbackHost, parseAddress } from '../../src/node/address.js';
import { IpcborError } from '../../src/core/errors.js';

const invalid = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof IpcborError && e.code === 'IPCBOR_ERR_INVALID_ADDRESS' && pattern.test(e.message));

describe('addresses', () => {
  it('parses unix and tcp addresses, IPv6 in brackets, and formats them back', () => {
    assert.deepEqual(parseAddress('unix:/tmp/a.sock'), { kind: 'unix', path: '/tmp/a.sock' });
    assert.deepEqual(parseAddress('tcp:127.0.0.1:9099'), { kind: 'tcp', host: '127.0.0.1', port: 9099 });
    assert.deepEqual(parseAddress('tcp:[::1]:0'), { kind: 'tcp', host: '::1', port: 0 });
    assert.deepEqual(parseAddress('tcp:localhost:65535'), { kind: 'tcp', host: 'localhost', port: 65535 });
    for (const a of ['unix:/tmp/a.sock', 'tcp:127.0.0.1:9099', 'tcp:[::1]:7']) assert.equal(formatAddress(parseAddress(a)), a);
  });

  it('parses tls addresses like tcp ones', () => {
    assert.deepEqual(parseAddress('tls:example.org:9443'), { kind: 'tls', host: 'example.org', port: 9443 });
    assert.deepEqual(parseAddress('tls:[::1]:0'), { kind: 'tls', host: '::1', port: 0 });
    for (const a of ['tls:10.0.0.1:9443', 'tls:[fe80::1]:7', 'tls:localhost:1']) assert.equal(formatAddress(parseAddress(a)), a);
  });

  it('tells loopback hosts from network ones', () => {
    for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1', 'example.org', 'localhost.example.org', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  });

  it('refuses what it cannot use, with a message that says why', () => {
    invalid(() => parseAddress('tcp:127.0.0.1:65536'), /bad port "65536"/);
    invalid(() => parseAddress('tcp:::1:80'), /IPv6 hosts in brackets/);
    invalid(() => parseAddress('tcp:host'), /expected tcp:HOST:PORT/);
    invalid(() => parseAddress('http://x'), /expected unix:PATH, tcp:HOST:PORT or tls:HOST:PORT/);
    invalid(() => parseAddress('tls:host'), /expected tls:HOST:PORT/);
    invalid(() => parseAddress('tls:[::1]:70000'), /bad port/);
    invalid(() => parseAddress('unix:'), /empty/);
    invalid(() => parseAddress(`unix:/tmp/${'x'.repeat(120)}`), /unix socket path is 125 bytes, over the limit of 10[37]/);
  });

  it('takes the base programs\' flags and address arguments', () => {
    assert.deepEqual(addressFromArgs(['--unix', '/tmp/t.sock']), { address: { kind: 'unix', path: '/tmp/t.sock' }, rest: [] });
    assert.deepEqual(addressFromArgs(['--tcp', '0.0.0.0', '9099', '-v']), { address: { kind: 'tcp', host: '0.0.0.0', port: 9099 }, rest: ['-v'] });
    assert.deepEqual(addressesFromArgs(['unix:/a', '--tcp', '::1', '1', 'tcp:h:2']).addresses.map(formatAddress), ['unix:/a', 'tcp:[::1]:1', 'tcp:h:2']);
    invalid(() => addressFromArgs(['--tcp', 'h']), /--tcp needs a HOST and a PORT/);
    assert.deepEqual(addressFromArgs(['--tls', '::', '9443', '--cert', 'c.pem']), { address: { kind: 'tls', host: '::', port: 9443 }, rest: ['--cert', 'c.pem'] });
    assert.deepEqual(addressesFromArgs(['tls:h:1', '--tls', '127.0.0.1', '2']).addresses.map(formatAddress), ['tls:h:1', 'tls:127.0.0.1:2']);
    invalid(() => addressFromArgs(['--tls', 'h']), /--tls needs a HOST and a PORT/);
    invalid(() => addressFromArgs([]), /no address given/);
    invalid(() => addressFromArgs(['unix:/a', 'unix:/b']), /more than one address/);
  });
});
