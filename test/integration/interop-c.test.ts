/**
 * Byte compatibility with foreign peers: the C test peers in test/peers
 * reproduce the reference C server and client (four write() calls per
 * request, empty error body for an unknown method, 63-byte method cap).
 * ipcbor's client talks to the C server, and the C client to ipcbor's server.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { connect, createRelay, IpcborError, serve, type Relay, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { golden, toHex, values } from '../fixtures/golden.js';
import { prerequisite, tempSocket } from '../helpers.js';

const run = promisify(execFile);
const peers = fileURLToPath(new URL('../../../test/peers/', import.meta.url));
const bin = mkdtempSync(join(tmpdir(), 'ipcbor-peers-'));
const cServer = join(bin, 'base_server');
const cClient = join(bin, 'base_client');

/**
 * A C compiler that can build the peers: `cc` and the C library headers
 * (Debian: gcc libc6-dev). Without one these tests are skipped, unless
 * IPCBOR_REQUIRE_CC=1 (as .ci/run sets), where they fail instead.
 */
const cc = prerequisite('IPCBOR_REQUIRE_CC', () => {
  const probe = '#include <stdio.h>\n#include <sys/socket.h>\n#include <sys/un.h>\n#include <netinet/tcp.h>\nint main(void) { return 0; }\n';
  const r = spawnSync('cc', ['-std=c99', '-x', 'c', '-', '-o', join(bin, 'probe')], { input: probe, stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.error) return `no C compiler: \`cc\` is not installed (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}; Debian: gcc libc6-dev), the C interop tests build their peers with it`;
  if (r.status !== 0) return `\`cc\` cannot build a program with the C library headers (Debian: libc6-dev): ${r.stderr.trim().split('\n')[0] ?? ''}`;
  return undefined;
});
const skip = cc.skip;

before(() => {
  if (skip) return;
  cc.check();
  for (const [src, out] of [
    ['base_server.c', cServer],
    ['base_client.c', cClient],
  ] as const) {
    execFileSync('cc', ['-std=c99', '-O2', '-Wall', '-Wextra', '-o', out, join(peers, src)], { stdio: 'inherit' });
  }
});
after(() => rmSync(bin, { recursive: true, force: true }));

const baseLines = ['[client] version = nim-timer v0.1.0', '[client] echo.echoed= hello over the wire', '[client] echo.timer = ipc-server'];

function flags(address: string): string[] {
  if (address.startsWith('unix:')) return ['--unix', address.slice(5)];
  const m = /^tcp:(.+):(\d+)$/.exec(address)!;
  return ['--tcp', m[1]!, m[2]!];
}

describe('C base-framing client -> ipcbor server', { skip }, () => {
  let server: Server;
  before(async () => {
    server = await serve(createTimer('ipc-server'), [`unix:${tempSocket()}`, 'tcp:127.0.0.1:0']);
  });
  after(() => server.close());

  for (const i of [0, 1]) {
    it(`prints the base-framing client's three lines (${i === 0 ? 'unix' : 'tcp'})`, async () => {
      const { stdout } = await run(cClient, flags(server.addresses[i]!));
      assert.deepEqual(stdout.trim().split('\n'), baseLines);
    });
  }

  it('gets the golden bytes for every method, request written in four pieces', async () => {
    const a = flags(server.addresses[0]!);
    const cases = [
      ['version', 'a0', `ret=0 body=${golden.versionResponse.replace(/ /g, '').slice(16)}`],
      ['echo', toHex(Buffer.from(golden.echoRequest.replace(/ /g, ''), 'hex').subarray(12)), `ret=0 body=${golden.echoResponse.replace(/ /g, '').slice(16)}`],
      ['schedule', golden.scheduleRequestBody, `ret=0 body=${golden.scheduleResponseBody}`],
      ['complex', golden.complexRequestBody, `ret=0 body=${golden.complexResponseBody}`],
      ['nope', 'a0', `ret=1 body=${Buffer.from('unknown method: nope').toString('hex')}`],
    ];
    for (const [method, payload, expected] of cases) {
      const { stdout } = await run(cClient, [...a, '--raw', method!, payload!]);
      assert.equal(stdout.trim(), expected, method);
    }
  });
});

describe('ipcbor client -> C base-framing server', { skip }, () => {
  const children: ChildProcess[] = [];
  const addresses: string[] = [];
  before(async () => {
    const path = tempSocket();
    for (const args of [['--unix', path], ['--tcp', '127.0.0.1', '0']]) {
      const child = spawn(cServer, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
      addresses.push(args[0] === '--unix' ? `unix:${path}` : `tcp:127.0.0.1:${line.split(' ')[1]}`);
    }
  });
  after(() => {
    for (const c of children) c.kill('SIGTERM');
  });

  for (const i of [0, 1]) {
    it(`falls back to the base framing by itself and calls every method (${i === 0 ? 'unix' : 'tcp'})`, async () => {
      await using client = await connect(addresses[i]!);
      assert.equal(client.protocol, 'base', 'the C server answered the hello with ret 1');
      assert.equal(await client.call('version'), 'nim-timer v0.1.0');
      assert.deepEqual(await client.call('echo', values.echoParams), values.echoResult);
      assert.deepEqual(await client.call('schedule', values.scheduleParams), values.scheduleResult);
      assert.deepEqual(await client.call('complex', values.complexParams), values.complexResult);
    });
  }

  it('reports the C server errors with their text, on the same connection', async () => {
    await using client = await connect(addresses[0]!);
    const failures = [
      client.call('echo', { req: { message: '__fail__', delayMs: 0 } }),
      client.call('schedule', { ...values.scheduleParams, job: { ...values.scheduleParams.job, name: '' } }),
      client.call('nope'),
    ];
    const messages = [];
    for (const f of failures) {
      try {
        await f;
        assert.fail('expected an error');
      } catch (err) {
        assert.ok(err instanceof IpcborError);
        assert.equal(err.code, 'IPCBOR_ERR_REMOTE');
        messages.push(err.message);
      }
    }
    assert.deepEqual(messages, ['forced failure for echo', 'job name must not be empty', 'the server reported an error without text']);
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
  });

  it('pipelines 200 calls through the C server and matches answers by order', async () => {
    await using client = await connect(addresses[1]!);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => client.call('echo', { req: { message: `n${i}`, delayMs: 0 } })));
    results.forEach((r, i) => assert.equal((r as { echoed: string }).echoed, `n${i}`));
  });

  it('ipcbor describe says a base-framing peer has no introspection, and exits 1', async () => {
    const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    const r = await run(process.execPath, [cli, 'describe', addresses[0]!]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not describe itself.*base-framing peer/);
  });

  it('ipcbor call (the CLI) works against the C server', async () => {
    const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    const { stdout } = await run(process.execPath, [cli, 'call', addresses[0]!, 'echo', JSON.stringify(values.echoParams), '--compact']);
    assert.equal(stdout.trim(), JSON.stringify(values.echoResult));
  });
});

describe('through the TCP relay: C base-framing client -> relay -> ipcbor unix service, and ipcbor -> relay -> C server', { skip }, () => {
  let server: Server;
  let relay: Relay;
  let cChild: ChildProcess;
  let toC: Relay;
  before(async () => {
    server = await serve(createTimer('ipc-server'), `unix:${tempSocket()}`);
    relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: server.addresses[0]! });
    const path = tempSocket();
    cChild = spawn(cServer, ['--unix', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<string>((resolve) => createInterface({ input: cChild.stdout! }).once('line', resolve));
    toC = await createRelay({ listen: 'tcp:127.0.0.1:0', to: `unix:${path}` });
  });
  after(async () => {
    await relay.close();
    await toC.close();
    await server.close();
    cChild.kill('SIGTERM');
  });

  it("prints the base-framing client's three lines through the relay", async () => {
    const { stdout } = await run(cClient, flags(relay.addresses[0]!));
    assert.deepEqual(stdout.trim().split('\n'), baseLines);
  });

  it('falls back to the base framing through the relay when the service is the C server', async () => {
    await using client = await connect(toC.addresses[0]!);
    assert.equal(client.protocol, 'base', "the relay passes the C server's refusal of the hello on as it came");
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    assert.deepEqual(await client.call('echo', values.echoParams), values.echoResult);
    assert.deepEqual(await client.call('schedule', values.scheduleParams), values.scheduleResult);
  });
});
