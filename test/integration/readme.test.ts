/** The README's five-minute example (examples/greeter), run as a newcomer would: server and client in their own processes. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { greeter } from '../../examples/greeter/greeter.js';
import { tempSocket } from '../helpers.js';

const here = (f: string) => fileURLToPath(new URL(`../../examples/greeter/${f}`, import.meta.url));

describe('the README example', () => {
  it('serves the greeter in one process and calls it, typed, from another, by name', async () => {
    // As the README runs them: no arguments, the service named 'greeter' in the runtime directory.
    const rundir = tempSocket('run');
    const env = { ...process.env, IPCBOR_RUNDIR: rundir };
    const server = spawn(process.execPath, [here('server.js')], { stdio: ['ignore', 'pipe', 'inherit'], env });
    try {
      const line = await new Promise<string>((resolve) => createInterface({ input: server.stdout! }).once('line', resolve));
      assert.equal(line, 'listening greeter');
      const { stdout } = await promisify(execFile)(process.execPath, [here('client.js')], { env });
      assert.equal(stdout, 'hello ada\n');
    } finally {
      server.kill('SIGTERM');
    }
    await once(server, 'exit');
    assert.equal(existsSync(join(rundir, 'greeter.sock')), false, 'the server removed its socket on SIGTERM');
  });

  it('takes an explicit address too', async () => {
    const address = `unix:${tempSocket('greeter.sock')}`;
    const server = spawn(process.execPath, [here('server.js'), address], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve) => createInterface({ input: server.stdout! }).once('line', resolve));
      assert.equal(line, `listening ${address}`);
      const { stdout } = await promisify(execFile)(process.execPath, [here('client.js'), address]);
      assert.equal(stdout, 'hello ada\n');
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('calls the same definition in-process', async () => {
    assert.deepEqual(await greeter.hello({ name: 'ada', times: 2 }), { text: 'hello adahello ada' });
  });
});
