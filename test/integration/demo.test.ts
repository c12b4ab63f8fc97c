/** `npm run demo` as a user runs it: the output, and nothing left behind (also on Ctrl-C). */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const demo = fileURLToPath(new URL('../../examples/timer/demo.js', import.meta.url));
const baseLines = '[client] version = nim-timer v0.1.0\n[client] echo.echoed= hello over the wire\n[client] echo.timer = ipc-server';

/** The temp dir of a demo run, read from its output (`== timer client over unix:/tmp/ipcbor-demo-XXXX/timer.sock`). */
function demoDirOf(out: string): string {
  const m = /over unix:(\S+)\/timer\.sock/.exec(out);
  assert.ok(m, `no unix address in the demo output: ${out}`);
  return m[1]!;
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
  it('prints the base-framing client lines over unix and TCP and cleans up', async () => {
    const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // 'close', not 'exit': by then its stdout has been read to the end.
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 0, out);
    assert.match(out, /== timer client over unix:\S+\n/);
    assert.match(out, /== timer client over tcp:127\.0\.0\.1:\d+\n/);
    assert.equal(out.split(baseLines).length, 3, 'the three lines, twice');
    assert.equal(existsSync(demoDirOf(out)), false, 'its temp dir (and socket) removed');
  });

  it('leaves no process and no socket behind on Ctrl-C (SIGINT to the process group)', async () => {
    const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const listening = new Promise<void>((resolve) =>
      child.stdout.on('data', (d) => {
        out += d;
        if (/over unix:\S+\/timer\.sock/.test(out)) resolve();
      }),
    );
    await listening;
    const dir = demoDirOf(out);
    assert.ok(existsSync(dir), 'the demo is running in its temp dir');
    process.kill(-child.pid!, 'SIGINT');
    await new Promise((r) => child.on('exit', r));
    assert.equal(existsSync(dir), false, `${dir} removed`);
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
