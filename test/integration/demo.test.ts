/** `npm run demo` as a user runs it: the output, and nothing left behind (also on Ctrl-C). */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const demo = fileURLToPath(new URL('../../examples/timer/demo.js', import.meta.url));
const seedLines = '[client] version = nim-timer v0.1.0\n[client] echo.echoed= hello over the wire\n[client] echo.timer = ipc-server';

function demoDirs(): Set<string> {
  return new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('ipcbor-demo-')));
}

/** Processes of the group that are running (not zombies). */
function livingInGroup(pgid: number): boolean {
  const r = spawnSync('ps', ['-o', 'stat=', '-g', String(pgid)], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.stdout.split('\n').some((stat) => stat.trim() !== '' && !stat.trim().startsWith('Z'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the demo', () => {
  it('prints the seed client lines over unix and TCP and cleans up', async () => {
    const before = demoDirs();
    const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0, out);
    assert.match(out, /== timer client over unix:\S+\n/);
    assert.match(out, /== timer client over tcp:127\.0\.0\.1:\d+\n/);
    assert.equal(out.split(seedLines).length, 3, 'the three lines, twice');
    assert.deepEqual([...demoDirs()].filter((d) => !before.has(d)), [], 'no temp dir left');
  });

  it('leaves no process and no socket behind on Ctrl-C (SIGINT to the process group)', async () => {
    const before = demoDirs();
    const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const listening = new Promise<void>((resolve) =>
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('== timer client')) resolve();
      }),
    );
    await listening;
    const mine = [...demoDirs()].filter((d) => !before.has(d));
    process.kill(-child.pid!, 'SIGINT');
    await new Promise((r) => child.on('exit', r));
    for (const d of mine) assert.equal(existsSync(join(tmpdir(), d)), false, `${d} removed`);
    assert.equal(alive(child.pid!), false);
    // No timer server or client left from this demo: its process group
    // empties (exited children may linger a moment as zombies until reaped).
    let left = true;
    for (let i = 0; i < 50 && left; i++) {
      left = livingInGroup(child.pid!);
      if (left) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(left, false, 'a process of the demo is still running');
  });
});
