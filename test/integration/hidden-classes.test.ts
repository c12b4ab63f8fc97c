/** The objects on the call path keep one hidden class across connections (see hidden-classes-child.ts). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

describe('hidden classes on the call path', () => {
  it('clients made by connect() (unix, tcp, with reconnect or a timeout), their connections, peers and transports, and the handlers\' contexts each share one class', () => {
    const child = fileURLToPath(new URL('./hidden-classes-child.js', import.meta.url));
    const run = spawnSync(process.execPath, ['--allow-natives-syntax', child], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 0, `the child failed:\n${run.stderr.split('\n').slice(0, 8).join('\n')}`);
    const { calls, same } = JSON.parse(run.stdout.trim()) as { calls: number; same: Record<string, boolean> };
    assert.equal(calls, 18);
    assert.deepEqual(same, {
      client: true,
      connection: true,
      peer: true,
      flow: true,
      budget: true,
      timers: true,
      decoder: true,
      transport: true,
      context: true,
      connectionInfo: true,
    });
  });
});
