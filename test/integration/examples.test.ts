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
  it('lazy/simulation: an admin call changes the speed between two steps', async () => {
    const rundir = tempSocket('run');
    const env = { ...process.env, IPCBOR_RUNDIR: rundir };
    const { child, lines } = start('lazy/simulation.js', ['--name', 'sim', '--ticks', '30'], env);
    try {
      await waitFor(() => lines.includes('listening sim'), 'the simulation to listen', 10_000);
      const { stdout } = await promisify(execFile)(process.execPath, [cli, 'call', 'sim', 'set', '{"speed": 5}', '--compact'], { env });
      assert.equal(JSON.parse(stdout).speed, 5);
      await once(child, 'exit');
    } finally {
      child.kill('SIGTERM');
    }
    const ticks = lines.filter((l) => l.startsWith('tick ')).map((l) => {
      const m = /^tick (\d+) position (\d+) speed (\d+)( \(1 admin call\))?$/.exec(l);
      assert.ok(m, l);
      return { tick: Number(m[1]), position: Number(m[2]), speed: Number(m[3]), admin: m[4] !== undefined };
    });
    assert.equal(ticks.length, 30);
    const at = ticks.findIndex((t) => t.admin);
    assert.ok(at > 0, 'the admin call was handled at one step');
    // Every step before it moved by 1, every step after it by 5: the change fell between two steps.
    for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i]!.position - ticks[i - 1]!.position, i <= at ? 1 : 5, `step ${i}`);
    assert.equal(existsSync(join(rundir, 'sim.sock')), false, 'the socket is gone');
  });

  it('loop/chat: messages, stdin as an external input, connections, and a clean stop', async () => {
    const rundir = tempSocket('run');
    const env = { ...process.env, IPCBOR_RUNDIR: rundir };
    const { child, lines } = start('loop/chat.js', ['--name', 'chat'], env);
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
      assert.ok(lines.some((l) => /^\+ connection \d+ \(unix\)$/.test(l)));
      assert.ok(lines.includes('ada: hello'));
    } finally {
      child.kill('SIGTERM');
    }
    await once(child, 'exit');
    assert.equal(existsSync(join(rundir, 'chat.sock')), false, 'the socket is gone');
  });
});
