/**
 * Secure defaults for network listeners: plaintext TCP off loopback is
 * refused unless `insecure`, and `$ipcbor.describe` is off on network
 * listeners (TCP off loopback, TLS) unless `introspection: true`, decided
 * per listener of one server. Then the programs: the timer server's
 * refusal of `--tcp 0.0.0.0`, and the timer and the CLI over TLS.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, createLoop, serve, serveLazy, type Server, type ServeOptions } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { rejectsWith } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';
import { certs, openssl, type Certs } from '../tls-helpers.js';

const DESCRIBE = '$ipcbor.describe';
let c: Certs;
// Made where openssl is; where it is missing, the TLS tests below are
// skipped, or (IPCBOR_REQUIRE_OPENSSL=1) fail at their first line.
before(() => {
  if (openssl.missing === undefined) c = certs();
});

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(address: string | string[], options: ServeOptions = {}): Promise<Server> {
  const server = await serve(createTimer('ipc-server'), address, options);
  servers.push(server);
  return server;
}

/** The loopback address to reach a server's listener `i` at. */
function reach(server: Server, i = 0): string {
  const a = server.addresses[i]!;
  const port = a.slice(a.lastIndexOf(':') + 1);
  return a.startsWith('tls:') ? `tls:127.0.0.1:${port}` : a.startsWith('tcp:') ? `tcp:127.0.0.1:${port}` : a;
}

/** Whether `$ipcbor.describe` answers at `address` (it is otherwise an unknown method). */
async function describes(address: string, tls = address.startsWith('tls:')): Promise<boolean> {
  await using client = await connect(address, tls ? { tls: { ca: c.ca } } : {});
  assert.equal(client.protocol, 'extended');
  try {
    await client.call(DESCRIBE);
    return true;
  } catch (err) {
    await rejectsWith(Promise.reject(err), 'IPCBOR_ERR_UNKNOWN_METHOD');
    return false;
  }
}

describe('plaintext TCP on a network address', () => {
  it('is refused without insecure, before anything listens', async () => {
    const path = tempSocket();
    for (const a of ['tcp:0.0.0.0:0', 'tcp:[::]:0', 'tcp:192.0.2.1:0', 'tcp:example.org:0']) {
      await rejectsWith(serve(createTimer('ipc-server'), [`unix:${path}`, a]), 'IPCBOR_ERR_INVALID_ADDRESS');
    }
    assert.equal(existsSync(path), false, 'the unix listener given beside it was not started');
  });

  it('is allowed with insecure: true, with introspection off unless asked for', async () => {
    const server = await start('tcp:0.0.0.0:0', { insecure: true });
    assert.match(server.addresses[0]!, /^tcp:0\.0\.0\.0:\d+$/);
    assert.equal(await describes(reach(server)), false);
    await using client = await connect(reach(server));
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    const open = await start('tcp:0.0.0.0:0', { insecure: true, introspection: true });
    assert.equal(await describes(reach(open)), true);
  });

  it('loopback TCP needs no insecure, and describes itself', async () => {
    for (const a of ['tcp:127.0.0.1:0', 'tcp:localhost:0']) {
      const server = await start(a);
      assert.equal(await describes(reach(server)), true, a);
    }
  });
});

describe('introspection', () => {
  it('is on for unix sockets and loopback, off for TLS, per listener of one server', { skip: openssl.skip }, async () => {
    openssl.check();
    const server = await start([`unix:${tempSocket()}`, 'tcp:127.0.0.1:0', 'tls:127.0.0.1:0'], { tls: { cert: c.server.cert, key: c.server.key } });
    assert.equal(await describes(reach(server, 0)), true);
    assert.equal(await describes(reach(server, 1)), true);
    assert.equal(await describes(reach(server, 2)), false);
    // Every other method still answers over TLS.
    await using client = await connect(reach(server, 2), { tls: { ca: c.ca } });
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
  });

  it('introspection: true turns it on everywhere, false off everywhere', { skip: openssl.skip }, async () => {
    openssl.check();
    const on = await start([`unix:${tempSocket()}`, 'tls:127.0.0.1:0'], { tls: { cert: c.server.cert, key: c.server.key }, introspection: true });
    assert.equal(await describes(reach(on, 0)), true);
    assert.equal(await describes(reach(on, 1)), true);
    const off = await start([`unix:${tempSocket()}`, 'tcp:127.0.0.1:0'], { introspection: false });
    assert.equal(await describes(reach(off, 0)), false);
    assert.equal(await describes(reach(off, 1)), false);
  });

  it('is off in a plain object of handlers, the lazy server and the event loop too', async () => {
    const handlers = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`, { introspection: false });
    servers.push(handlers);
    assert.equal(await describes(handlers.addresses[0]!), false);

    const lazy = await serveLazy(createTimer('ipc-server'), `unix:${tempSocket()}`, { introspection: false });
    servers.push(lazy);
    const timer = setInterval(() => lazy.handleNewMessages(), 5);
    try {
      assert.equal(await describes(lazy.addresses[0]!), false);
    } finally {
      clearInterval(timer);
    }

    const loop = createLoop({ handlers: createTimer('ipc-server'), introspection: false });
    try {
      const [address] = await loop.serve(`unix:${tempSocket()}`);
      assert.equal(await describes(address!), false);
    } finally {
      await loop.close();
    }
  });
});

// ---- programs ---------------------------------------------------------------------

const timerServer = fileURLToPath(new URL('../../examples/timer/server.js', import.meta.url));
const timerClient = fileURLToPath(new URL('../../examples/timer/client.js', import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const baseLines = '[client] version = nim-timer v0.1.0\n[client] echo.echoed= hello over the wire\n[client] echo.timer = ipc-server\n';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Start the timer server; resolves with its `listening` addresses once it printed them all. */
async function timer(args: string[], count = 1): Promise<{ child: ChildProcess; addresses: string[] }> {
  const child = spawn(process.execPath, [timerServer, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  after(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  const addresses: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the timer server exited with ${code}`)));
    lines.on('line', (line) => {
      addresses.push(line.replace(/^listening /, ''));
      if (addresses.length === count) resolve();
    });
  });
  return { child, addresses };
}

describe('the timer server and the CLI', () => {
  it('refuse plaintext TCP on 0.0.0.0 with a message pointing to TLS; --insecure allows it', async () => {
    const r = await run(timerServer, ['--tcp', '0.0.0.0', '9099']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tls:0\.0\.0\.0:9099/);
    assert.match(r.stderr, /--tls HOST PORT --cert FILE --key FILE/);
    assert.match(r.stderr, /--insecure/);
    const { child, addresses } = await timer(['--tcp', '0.0.0.0', '0', '--insecure']);
    assert.match(addresses[0]!, /^tcp:0\.0\.0\.0:\d+$/);
    child.kill('SIGTERM');
  });

  it('serves loopback TCP without --insecure', async () => {
    const { child, addresses } = await timer(['--tcp', '127.0.0.1', '0']);
    const r = await run(timerClient, [addresses[0]!]);
    assert.equal(r.stdout, baseLines);
    child.kill('SIGTERM');
  });

  it('serve TLS and mutual TLS, and call over them', { skip: openssl.skip }, async () => {
    openssl.check();
    const { child, addresses } = await timer(['--tls', '127.0.0.1', '0', '--cert', c.server.certFile, '--key', c.server.keyFile]);
    assert.match(addresses[0]!, /^tls:127\.0\.0\.1:\d+$/);
    assert.equal((await run(timerClient, [addresses[0]!, '--ca', c.caFile])).stdout, baseLines);
    const port = addresses[0]!.split(':').pop()!;
    assert.equal((await run(timerClient, ['--tls', '127.0.0.1', port, '--ca', c.caFile])).stdout, baseLines);
    // Without the CA the server is not trusted.
    const untrusted = await run(timerClient, [addresses[0]!]);
    assert.equal(untrusted.code, 1);
    assert.equal(untrusted.stdout, '');

    const call = await run(cli, ['call', addresses[0]!, 'version', '--ca', c.caFile]);
    assert.equal(call.code, 0, call.stderr);
    assert.equal(JSON.parse(call.stdout), 'nim-timer v0.1.0');
    assert.equal((await run(cli, ['call', addresses[0]!, 'version'])).code, 3);
    assert.equal((await run(cli, ['call', addresses[0]!, 'version', '--ca', '/nonexistent/ca.pem'])).code, 2);
    // Introspection is off on a TLS listener.
    assert.equal((await run(cli, ['describe', addresses[0]!, '--ca', c.caFile])).code, 1);
    child.kill('SIGTERM');

    const mutual = await timer(['--tls', '127.0.0.1', '0', '--cert', c.server.certFile, '--key', c.server.keyFile, '--ca', c.caFile, '--introspection']);
    const address = mutual.addresses[0]!;
    assert.equal((await run(timerClient, [address, '--ca', c.caFile, '--cert', c.alice.certFile, '--key', c.alice.keyFile])).stdout, baseLines);
    const refused = await run(timerClient, [address, '--ca', c.caFile]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    const described = await run(cli, ['describe', address, '--ca', c.caFile, '--cert', c.alice.certFile, '--key', c.alice.keyFile]);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /echo/);
    assert.equal((await run(cli, ['call', address, 'version', '--ca', c.caFile, '--cert', c.mallory.certFile, '--key', c.mallory.keyFile])).code, 3);
    mutual.child.kill('SIGTERM');
  });
});
