/**
 * A client in another language, written from docs/PROTOCOL.md alone: the
 * Python peer in test/peers/python_client.py uses the cbor2 library (not
 * ipcbor's codec) for the base framing, the extended protocol, events and
 * credit-based streams. It needs python3 with cbor2 (Debian's
 * python3-cbor2); without it the tests are skipped, except where
 * IPCBOR_REQUIRE_PYTHON=1 (as in .ci/run) makes that a failure.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createRelay, defineService, method, s, serve, type Relay, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { tempSocket } from '../helpers.js';
import { python, skipWithoutPython } from '../python.js';

const script = fileURLToPath(new URL('../../../test/peers/python_client.py', import.meta.url));

const skip = skipWithoutPython;

async function runPython(args: string[]): Promise<Record<string, unknown>[]> {
  assert.ok(python, 'python3 with cbor2 is required here (IPCBOR_REQUIRE_PYTHON=1) but was not found');
  const { stdout } = await promisify(execFile)(python, [script, ...args], { timeout: 20_000 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const merged = (lines: Record<string, unknown>[]) => Object.assign({}, ...lines) as Record<string, unknown>;

describe('a Python client written from docs/PROTOCOL.md', { skip }, () => {
  let server: Server;
  /** The same server behind a TCP relay: every test runs both ways. */
  let relay: Relay;
  before(async () => {
    const test = defineService({
      name: 'test',
      version: '1',
      methods: {
        count: method({
          params: s.object({ n: s.int() }),
          handler: async function* ({ n }) {
            for (let i = 0; i < n; i++) yield i;
          },
        }),
      },
    });
    server = await serve([createTimer('ipc-server'), test], [`unix:${tempSocket()}`, 'tcp:127.0.0.1:0']);
    relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: server.addresses[0]! });
  });
  after(async () => {
    await relay.close();
    await server.close();
  });
  const direct = () => server.addresses[1]!;
  const relayed = () => relay.addresses[0]!;

  for (const [how, address] of [['directly', direct], ['through the TCP relay', relayed]] as const) {
    it(`speaks the base framing: calls, an unknown method, pipelining (${how})`, async () => {
      const r = merged(await runPython([address(), 'base']));
      assert.equal(r.version, 'nim-timer v0.1.0');
      assert.deepEqual(r.echo, { echoed: 'from python', timerName: 'ipc-server' });
      assert.equal(r.error, 1);
      assert.equal(r.text, 'unknown method: nope');
      assert.deepEqual(r.pipelined, ['p1', 'p2', 'p3']);
    });

    it(`opens the extended protocol: multiplexing, errors, events, deadlines, notifications (${how})`, async () => {
      const r = merged(await runPython([address(), 'extended']));
      assert.equal((r.hello as { version: number }).version, 1);
      assert.deepEqual(r.order, ['b', 'c', 'a'], 'answers leave as they finish');
      assert.deepEqual(r.error, { code: 'IPCBOR_ERR_UNKNOWN_METHOD', message: 'unknown method: nope' });
      assert.deepEqual(r.event, { name: 'on_echo_fired', payload: { eventType: 'on_echo_fired', payload: { message: 'evt', echoCount: 1 } } });
      assert.deepEqual(r.echo, { echoed: 'evt', timerName: 'ipc-server' });
      assert.equal(r.deadline, 'IPCBOR_ERR_DEADLINE_EXCEEDED');
      assert.equal(r.after_notify, 'nim-timer v0.1.0');
      assert.equal(r.done, true);
    });

    it(`reads a result stream with credit, never past the window it announced (${how})`, async () => {
      for (const window of [1, 4, 16]) {
        const r = merged(await runPython([address(), 'stream', 'test.count', String(window)]));
        assert.deepEqual(r.items, Array.from({ length: 100 }, (_, i) => i));
        assert.ok((r.max_outstanding as number) <= window, `window ${window}: outstanding ${String(r.max_outstanding)}`);
      }
    });
  }
});
