/** The ipcbor command line, run as a user would: a child process against a real server. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, defineService, method, serve, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { tempSocket } from '../helpers.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function ipcbor(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('ipcbor CLI', () => {
  let server: Server;
  let address: string;
  before(async () => {
    const bytes = defineService({
      name: 'bytes',
      version: '1',
      methods: {
        blob: method({ handler: (p: { data: Uint8Array }) => ({ data: p.data, len: p.data.length, big: 2n ** 60n }) }),
        count: method({
          handler: async function* (p: { n: number }) {
            for (let i = 0; i < p.n; i++) yield { i };
          },
        }),
      },
    });
    server = await serve([createTimer('ipc-server'), bytes], `unix:${tempSocket()}`);
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('explains itself', async () => {
    const top = await ipcbor(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Commands:\n  call .*\n  describe /);
    const call = await ipcbor(['call', '--help']);
    assert.equal(call.code, 0);
    assert.match(call.stdout, /^Usage: ipcbor call ADDRESS METHOD \[JSON\|-\]/);
    assert.match(call.stdout, /Exit status/);
    const none = await ipcbor([]);
    assert.equal(none.code, 2);
  });

  it('prints a stream as JSON lines and exits 0 when it ends', async () => {
    const t0 = Date.now();
    const r = await ipcbor(['call', address, 'bytes.count', '{"n":3}']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['{"i":0}', '{"i":1}', '{"i":2}']);
    assert.ok(Date.now() - t0 < 10_000, 'it does not wait for the call timeout');
  });

  it('calls a method and prints the result as JSON', async () => {
    const r = await ipcbor(['call', address, 'echo', '{"req":{"message":"hi","delayMs":0}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { echoed: 'hi', timerName: 'ipc-server' });
    const v = await ipcbor(['call', address, 'version', '--compact']);
    assert.equal(v.stdout, '"nim-timer v0.1.0"\n');
  });

  it('shows byte strings readably and big integers exactly, both ways', async () => {
    const r = await ipcbor(['call', address, 'bytes.blob', '{"data":{"$bytes":"00ff10"}}', '--compact']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '{"data":{"$bytes":"00ff10"},"len":3,"big":1152921504606846976}');
  });

  it('exits 1 with the server text on an error answer', async () => {
    const r = await ipcbor(['call', address, 'echo', '{"req":{"message":"hi","delayMs":"x"}}']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), 'req.delayMs: expected integer, got string');
    assert.equal(r.stdout, '');
  });

  it('says which methods exist when the name is wrong', async () => {
    const r = await ipcbor(['call', address, 'ecoh']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^unknown method: ecoh\navailable methods: .*\becho\b.*timer\.echo.*bytes\.blob/);
  });

  it('exits 2 on usage errors and 3 when the server cannot be reached', async () => {
    assert.equal((await ipcbor(['call', address])).code, 2);
    assert.equal((await ipcbor(['call', address, 'echo', '{nope'])).code, 2);
    assert.equal((await ipcbor(['call', 'http://nowhere', 'echo'])).code, 2);
    assert.equal((await ipcbor(['call', address, 'echo', '--bogus'])).code, 2);
    const r = await ipcbor(['call', `unix:${tempSocket('absent.sock')}`, 'version']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /could not connect to unix:.*ENOENT/);
  });

  it('describes a server readably and as JSON', async () => {
    const r = await ipcbor(['describe', address]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^timer 0\.1\.0 {2}\(default service/);
    assert.match(r.stdout, /timer\.echo\(\{req: \{message: string, delayMs: integer\}\}\) -> \{echoed: string, timerName: string\}/);
    assert.match(r.stdout, /events:\n {4}on_echo_fired \{eventType: "on_echo_fired"/);
    assert.match(r.stdout, /bytes 1\n {2}bytes\.blob\(\)/);
    const j = await ipcbor(['describe', address, '--json']);
    assert.deepEqual(
      JSON.parse(j.stdout).services.map((s: { name: string }) => s.name),
      ['timer', 'bytes'],
    );
  });

  it('subscribes and prints events as JSON lines', async () => {
    const child = spawn(process.execPath, [cli, 'subscribe', address, 'on_echo_fired', '--count', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    // Wait until the server has the subscription, then fire two events.
    await using client = await connect(address);
    const closed = once(child, 'close');
    for (let i = 0; i < 500 && lines.length === 0; i++) {
      await client.call('echo', { req: { message: `m${i}`, delayMs: 0 } });
      await new Promise((r) => setTimeout(r, 20));
    }
    await client.call('echo', { req: { message: 'last', delayMs: 0 } });
    // 'close', not 'exit': its stdout is read to the end by then.
    const [code] = await closed;
    assert.equal(code, 0);
    assert.equal(lines.length, 2);
    const first = JSON.parse(lines[0]!);
    assert.equal(first.event, 'on_echo_fired');
    assert.equal(first.payload.eventType, 'on_echo_fired');
    assert.match(first.payload.payload.message, /^m\d+$/);
  });

  it('says so when asked to subscribe to a base-framing-only server', async () => {
    await using baseOnly = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`, { extended: false });
    const r = await ipcbor(['subscribe', baseOnly.addresses[0]!, 'x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /only the base framing/);
  });
});
