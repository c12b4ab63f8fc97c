/**
 * The relay on TLS (tls: and wss: listeners, mutual TLS, and a tls:
 * service behind it), and `ipcbor relay` run as a user would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { connect, createRelay, serve, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { tempSocket } from '../helpers.js';
import { deferred, rejectsWith } from '../extended-helpers.js';
import { certs, openssl } from '../tls-helpers.js';
import { ipcbor } from './cli.test.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const skip = openssl.skip;

describe('the relay over TLS', { skip }, () => {
  let server: Server;
  before(async () => {
    server = await serve(createTimer('ipc-server'), `unix:${tempSocket()}`);
  });
  after(() => server.close());

  it('serves tls: with mutual TLS, and refuses a client without a certificate', async () => {
    const c = certs();
    const relay = await createRelay({ listen: 'tls:127.0.0.1:0', to: server.addresses[0]!, tls: { cert: c.server.cert, key: c.server.key, clientCa: c.ca } });
    try {
      await using client = await connect(relay.addresses[0]!, { tls: { ca: c.ca, cert: c.alice.cert, key: c.alice.key } });
      assert.equal(client.protocol, 'extended');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0');
      await rejectsWith(connect(relay.addresses[0]!, { tls: { ca: c.ca }, connectTimeout: 5000 }), 'IPCBOR_ERR_CONNECT');
    } finally {
      await relay.close();
    }
  });

  it('relays to a tls: service, checking its certificate', async () => {
    const c = certs();
    const tlsServer = await serve(createTimer('behind-tls'), 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key } });
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: tlsServer.addresses[0]!, toTls: { ca: c.ca } });
    const untrusting = await createRelay({ listen: 'tcp:127.0.0.1:0', to: tlsServer.addresses[0]!, toTls: { ca: c.otherCa } });
    try {
      await using client = await connect(relay.addresses[0]!);
      assert.deepEqual(await client.call('echo', { req: { message: 'm', delayMs: 0 } }), { echoed: 'm', timerName: 'behind-tls' });
      const err = await rejectsWith(connect(untrusting.addresses[0]!), 'IPCBOR_ERR_CONNECT');
      assert.match(err.message, /could not reach the service/);
    } finally {
      await relay.close();
      await untrusting.close();
      await tlsServer.close();
    }
  });

  it('serves wss: with the same certificate options', async () => {
    const c = certs();
    const relay = await createRelay({ listen: 'wss:127.0.0.1:0', to: server.addresses[0]!, tls: { cert: c.server.cert, key: c.server.key } });
    try {
      assert.match(relay.addresses[0]!, /^wss:127\.0\.0\.1:\d+$/);
      const ws = new WebSocket(`wss://${relay.addresses[0]!.slice(4)}/`, ['ipcbor'], { ca: c.ca, origin: 'https://localhost' });
      await once(ws, 'open');
      assert.equal(ws.protocol, 'ipcbor');
      ws.close();
      await once(ws, 'close');
      const untrusted = new WebSocket(`wss://${relay.addresses[0]!.slice(4)}/`, ['ipcbor'], { ca: c.otherCa, origin: 'https://localhost' });
      const [err] = (await once(untrusted, 'error')) as [Error & { code?: string }];
      assert.match(String(err.code ?? err.message), /CERT|certificate|SELF_SIGNED|UNABLE/i);
    } finally {
      await relay.close();
    }
  });
});

describe('ipcbor relay', () => {
  let server: Server;
  const started = deferred();
  const release = deferred();
  before(async () => {
    server = await serve({ version: () => 'nim-timer v0.1.0', slow: async () => (started.resolve(), await release.promise, 'finished') }, `unix:${tempSocket()}`);
  });
  after(() => server.close());

  it('prints where it relays, relays, and stops on SIGINT after letting the call in flight finish', async () => {
    const child = spawn(process.execPath, [cli, 'relay', '--listen', 'tcp:127.0.0.1:0', '--listen', 'ws:127.0.0.1:0', '--to', server.addresses[0]!], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    const printed: string[] = [];
    await new Promise<void>((resolve) =>
      lines.on('line', (l) => {
        printed.push(l);
        if (printed.length === 2) resolve();
      }),
    );
    assert.match(printed[0]!, /^relaying tcp:127\.0\.0\.1:\d+ -> unix:/);
    assert.match(printed[1]!, /^relaying ws:127\.0\.0\.1:\d+ -> unix:/);
    const address = printed[0]!.split(' ')[1]!;
    const client = await connect(address);
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    const slow = client.call('slow');
    // Once the service runs the call, Ctrl-C: the call finishes before the relay exits.
    await started.promise;
    child.kill('SIGINT');
    release.resolve();
    assert.equal(await slow, 'finished');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 130);
    await client.close();
  });

  it('refuses what would be unsafe or wrong, saying why, with exit code 2', async () => {
    const to = server.addresses[0]!;
    const plain = await ipcbor(['relay', '--listen', 'tcp:0.0.0.0:0', '--to', to]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /refusing plaintext TCP on the network address/);
    const noCert = await ipcbor(['relay', '--listen', 'tls:127.0.0.1:0', '--to', to]);
    assert.equal(noCert.code, 2);
    assert.match(noCert.stderr, /needs the tls option/);
    const usage = await ipcbor(['relay', '--listen', 'tcp:127.0.0.1:0']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /Usage: ipcbor relay/);
    const badNumber = await ipcbor(['relay', '--listen', 'tcp:127.0.0.1:0', '--to', to, '--max-frame-bytes', '12k']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--max-frame-bytes must be a whole number/);
    const halfCert = await ipcbor(['relay', '--listen', 'tls:127.0.0.1:0', '--to', to, '--cert', 'x.pem']);
    assert.equal(halfCert.code, 2);
    assert.match(halfCert.stderr, /cannot read --cert|--cert and --key go together/);
  });

  it('takes the token from a file, and the bridge then refuses clients without it', async () => {
    const file = join(tempSocket('token-dir'), '..', 'token');
    writeFileSync(file, 'tok-123\n');
    const child = spawn(process.execPath, [cli, 'relay', '--listen', 'ws:127.0.0.1:0', '--to', server.addresses[0]!, '--token-file', file, '--allow-no-origin'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const url = `ws://${line.split(' ')[1]!.slice(3)}/`;
      const refused = new WebSocket(url, ['ipcbor']);
      const [, res] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(res.statusCode, 401);
      refused.on('error', () => {});
      refused.terminate();
      const ok = new WebSocket(url, ['ipcbor', 'ipcbor.bearer.tok-123']);
      await once(ok, 'open');
      ok.close();
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
});
