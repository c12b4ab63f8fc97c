/** The lazy-server and event-loop examples, run as a user would: their own process, the CLI and a client beside them. */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { waitFor } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';

const example = (f: string) => fileURLToPath(new URL(`../../examples/${f}`, import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Start an example; collect its stdout lines. */
function start(file: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; lines: string[]; rl: Interface } {
  const child = spawn(process.execPath, [example(file), ...args], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (l) => lines.push(l));
  return { child, lines, rl };
}

describe('examples', () => {
  /** The `tick` lines an example printed, parsed. */
  function ticksOf(lines: string[]) {
    return lines
      .filter((l) => l.startsWith('tick '))
      .map((l) => {
        const m = /^tick (\d+) position (\d+) speed (\d+)( \(1 admin call\))?$/.exec(l);
        assert.ok(m, l);
        return { tick: Number(m[1]), position: Number(m[2]), speed: Number(m[3]), admin: m[4] !== undefined };
      });
  }

  it('lazy/simulation: an admin call changes the speed between two steps', async () => {
    const rundir = tempSocket('run');
    const env = { ...process.env, IPCBOR_RUNDIR: rundir };
    // No --ticks: the test decides when it stops (a step limit would race the CLI's start-up).
    const { child, lines } = start('lazy/simulation.js', ['--name', 'sim'], env);
    const closed = once(child, 'close');
    let handledAt: number;
    try {
      await waitFor(() => lines.includes('listening sim'), 'the simulation to listen', 10_000);
      // The order is the test's, not the scheduler's: two steps first, at speed 1...
      await waitFor(() => ticksOf(lines).length >= 2, 'the first two steps', 10_000);
      // ...then the admin call, answered only when the loop handles it between two steps...
      const { stdout } = await promisify(execFile)(process.execPath, [cli, 'call', 'sim', 'set', '{"speed": 5}', '--compact'], { env });
      assert.equal(JSON.parse(stdout).speed, 5);
      // (The step's line is printed just after the answer is written: wait for it, do not assume it.)
      await waitFor(() => ticksOf(lines).some((t) => t.admin), 'the step that handled the admin call', 10_000);
      handledAt = ticksOf(lines).findIndex((t) => t.admin);
      // ...then two more steps at the new speed.
      await waitFor(() => ticksOf(lines).length >= handledAt + 3, 'two steps after the admin call', 10_000);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await closed;
    assert.equal(code, 0, 'SIGTERM stops it cleanly');
    const ticks = ticksOf(lines);
    assert.deepEqual(
      ticks.map((t) => t.tick),
      ticks.map((_, i) => i + 1),
      'one line per step',
    );
    assert.equal(ticks.filter((t) => t.admin).length, 1, 'one admin call, handled at one step');
    const at = ticks.findIndex((t) => t.admin);
    assert.equal(at, handledAt);
    assert.ok(at >= 2, `the admin call came after two steps (handled at step ${at + 1})`);
    assert.ok(ticks.length >= at + 3, 'two steps after it');
    // Every step up to it moved by 1, every step after it by 5: the change fell between two steps.
    assert.equal(ticks[0]!.position, 1);
    for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i]!.position - ticks[i - 1]!.position, i <= at ? 1 : 5, `step ${i + 1}`);
    assert.equal(existsSync(join(rundir, 'sim.sock')), false, 'the socket is gone');
  });

  it('lazy/simulation: --ticks N stops it after N steps', async () => {
    const rundir = tempSocket('run');
    const env = { ...process.env, IPCBOR_RUNDIR: rundir };
    const { child, lines } = start('lazy/simulation.js', ['--name', 'sim', '--ticks', '3'], env);
    const [code] = await once(child, 'close');
    assert.equal(code, 0);
    assert.deepEqual(
      ticksOf(lines).map((t) => [t.tick, t.position, t.admin]),
      [
        [1, 1, false],
        [2, 2, false],
        [3, 3, false],
      ],
    );
    assert.equal(existsSync(join(rundir, 'sim.sock')), false, 'the socket is gone');
  });

  it('loop/chat: messages, stdin as an external input, connections, and a clean stop', async () => {
    const rundir = tempSocket('run');
    const env = { ...process.env, IPCBOR_RUNDIR: rundir };
    const { child, lines } = start('loop/chat.js', ['--name', 'chat'], env);
    const closed = once(child, 'close');
    try {
      await waitFor(() => lines.includes('listening chat'), 'the chat to listen', 10_000);
      const address = `unix:${join(rundir, 'chat.sock')}`;
      await using client = await connect(address);
      const heard: unknown[] = [];
      await client.subscribe('said', (p) => heard.push(p)).ready;
      assert.deepEqual(await client.call('say', { from: 'ada', text: 'hello' }), { heard: 1 });
      await waitFor(() => heard.length === 1, 'her own message');
      child.stdin!.write('from the console\n');
      await waitFor(() => heard.length === 2, 'the line typed on stdin');
      assert.deepEqual(heard, [
        { from: 'ada', text: 'hello' },
        { from: 'server', text: 'from the console' },
      ]);
      await assert.rejects(client.call('shout', {}), (err: Error & { code?: string }) => err.code === 'IPCBOR_ERR_HANDLER');
      // Printed before the answers were sent, but on another pipe: waited for, not assumed.
      await waitFor(() => lines.some((l) => /^\+ connection \d+ \(unix\)$/.test(l)), 'the connection line');
      await waitFor(() => lines.includes('ada: hello'), 'the message line');
    } finally {
      child.kill('SIGTERM');
    }
    const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null];
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'a clean exit');
    assert.equal(existsSync(join(rundir, 'chat.sock')), false, 'the socket is gone');
  });

  it('loop/chat: Ctrl-C (SIGINT) closes the loop, removes the socket and exits 0, a client connected or not', async () => {
    for (const withClient of [false, true]) {
      const rundir = tempSocket('run');
      const sock = join(rundir, 'chat.sock');
      const { child, lines } = start('loop/chat.js', ['--name', 'chat'], { ...process.env, IPCBOR_RUNDIR: rundir });
      const closed = once(child, 'close');
      let client: Awaited<ReturnType<typeof connect>> | undefined;
      try {
        await waitFor(() => lines.includes('listening chat'), 'the chat to listen', 10_000);
        assert.equal(existsSync(sock), true);
        if (withClient) {
          client = await connect(`unix:${sock}`);
          assert.deepEqual(await client.call('say', { from: 'ada', text: 'bye' }), { heard: 0 });
        }
        child.kill('SIGINT');
        const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null];
        assert.deepEqual({ code, signal }, { code: 0, signal: null }, `a clean exit (client: ${withClient})`);
        assert.equal(existsSync(sock), false, `the socket is gone (client: ${withClient})`);
        if (client) assert.equal((await client.closed).code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      } finally {
        child.kill('SIGKILL');
        await client?.close();
      }
    }
  });
});
