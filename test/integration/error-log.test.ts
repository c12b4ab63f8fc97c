/**
 * A handler that throws is reported where an operator sees it: by default
 * one line on stderr (the method, the connection, the message), at most
 * ERROR_LOG_PER_SECOND a second, the rest counted; `onError: () => {}`
 * silences it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { ERROR_LOG_PER_SECOND, errorLine, errorLog } from '../../src/node/error-log.js';
import { IpcborError } from '../../src/core/errors.js';
import { waitFor } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';

const serverFile = fileURLToPath(new URL('./error-log-server.js', import.meta.url));

/** The child server; its stderr lines. */
async function child(mode?: 'silent') {
  const address = `unix:${tempSocket()}`;
  const proc = spawn(process.execPath, [serverFile, address, ...(mode ? [mode] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const exited = once(proc, 'exit');
  const [line] = (await once(createInterface({ input: proc.stdout! }), 'line')) as [string];
  assert.equal(line, 'listening');
  return {
    address,
    stderr,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

const SUPPRESSED = /^ipcbor: (\d+) more errors? not logged \(at most (\d+) a second\)$/;

describe('the default error log (a child server, its stderr)', () => {
  it('a handler that throws, sync or async, is one line: the method, the connection, the message; chosen errors are not logged', async () => {
    const server = await child();
    try {
      await using client = await connect(server.address);
      await assert.rejects(client.call('boom', { n: 7 }), { code: 'IPCBOR_ERR_HANDLER' });
      await assert.rejects(client.call('later'), { code: 'IPCBOR_ERR_HANDLER' });
      await assert.rejects(client.call('refuse'), { code: 'IPCBOR_ERR_INVALID_PARAMS' });
      client.notify('boom', { n: 8 });
      assert.equal(await client.call('ok'), 'ok');
      await waitFor(() => server.stderr.length >= 3, 'three lines on stderr');
      assert.match(server.stderr[0]!, /^ipcbor: boom failed on connection \d+ \(unix\): IPCBOR_ERR_HANDLER: kaput 7$/);
      assert.match(server.stderr[1]!, /^ipcbor: later failed on connection \d+ \(unix\): IPCBOR_ERR_HANDLER: kaput later$/);
      assert.match(server.stderr[2]!, /^ipcbor: boom failed on connection \d+ \(unix\): IPCBOR_ERR_HANDLER: kaput 8$/, 'a notification, once');
    } finally {
      await server.stop();
    }
    assert.equal(server.stderr.length, 3, server.stderr.join('\n'));
  });

  it('a flood of failing calls: at most the limit a second, the rest counted', async () => {
    const server = await child();
    const calls = 200;
    try {
      await using client = await connect(server.address);
      const started = Date.now();
      await Promise.all(Array.from({ length: calls }, (_, n) => client.call('boom', { n }).catch(() => undefined)));
      const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
      // Every failure is either a line or in a count: wait until all are accounted for.
      const accounted = () => {
        let n = 0;
        for (const l of server.stderr) {
          const m = SUPPRESSED.exec(l);
          n += m ? Number(m[1]) : 1;
        }
        return n;
      };
      await waitFor(() => accounted() === calls, `${calls} failures accounted for`, 10_000);
      const lines = server.stderr.filter((l) => !SUPPRESSED.test(l));
      assert.ok(lines.length <= ERROR_LOG_PER_SECOND * seconds, `${lines.length} lines in at most ${seconds} s`);
      assert.ok(server.stderr.some((l) => SUPPRESSED.exec(l)?.[2] === String(ERROR_LOG_PER_SECOND)), 'a count of the lines left out');
    } finally {
      await server.stop();
    }
  });

  it('onError: () => {} logs nothing', async () => {
    const server = await child('silent');
    try {
      await using client = await connect(server.address);
      for (let n = 0; n < 20; n++) await assert.rejects(client.call('boom', { n }), { code: 'IPCBOR_ERR_HANDLER' });
      assert.equal(await client.call('ok'), 'ok');
    } finally {
      await server.stop();
    }
    assert.deepEqual(server.stderr, []);
  });
});

describe('errorLog, on a clock of its own', () => {
  function fake(perSecond = 3) {
    let t = 1_000_000;
    const lines: string[] = [];
    const timers: { at: number; f: () => void }[] = [];
    const log = errorLog({ perSecond, write: (l) => lines.push(l), now: () => t, later: (f, ms) => void timers.push({ at: t + ms, f }) });
    const advance = (ms: number) => {
      t += ms;
      for (;;) {
        const due = timers.filter((x) => x.at <= t).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers.splice(timers.indexOf(due), 1);
        due.f();
      }
    };
    return { log, lines, advance, timers };
  }
  const conn = { id: 4, transport: 'tcp', protocol: 'base' as const, remote: '127.0.0.1:5000' };

  it('at most perSecond lines in a second; the count of the rest once the second is over', () => {
    const { log, lines, advance } = fake(3);
    for (let i = 0; i < 10; i++) log(new Error(`e${i}`), conn);
    assert.deepEqual(lines, ['ipcbor: connection 4 (tcp 127.0.0.1:5000): e0', 'ipcbor: connection 4 (tcp 127.0.0.1:5000): e1', 'ipcbor: connection 4 (tcp 127.0.0.1:5000): e2']);
    advance(999);
    assert.equal(lines.length, 3, 'nothing more within the second');
    advance(1);
    assert.deepEqual(lines.slice(3), ['ipcbor: 7 more errors not logged (at most 3 a second)']);
    // A new second: lines again.
    log(new Error('e10'), conn);
    assert.equal(lines.at(-1), 'ipcbor: connection 4 (tcp 127.0.0.1:5000): e10');
  });

  it('a steady flood prints the limit each second and one count each second, never more', () => {
    const { log, lines, advance } = fake(2);
    for (let s = 0; s < 5; s++) {
      for (let i = 0; i < 50; i++) {
        log(new Error('x'), conn);
        advance(10);
      }
      advance(500);
    }
    advance(2000);
    const counts = lines.filter((l) => l.includes('not logged'));
    const logged = lines.length - counts.length;
    const left = counts.reduce((n, l) => n + Number(/(\d+) more/.exec(l)![1]), 0);
    assert.equal(logged + left, 250);
    // 5 s of errors spread over 5 s and some: one window per second or so.
    assert.ok(logged <= 2 * 6, `${logged} lines`);
    assert.ok(counts.length <= 6, `${counts.length} counts`);
  });

  it('a line is safe for a terminal: controls, bidi overrides and line separators escaped, and cut to 1 KiB', () => {
    const err = new IpcborError('IPCBOR_ERR_HANDLER', `bad\u202etext\u001b[2J${'x'.repeat(5000)}`, { method: 'a\u202eb\u2028c\u2066' });
    const line = errorLine(err, { id: 7, transport: 'unix', protocol: 'base' });
    assert.ok(line.startsWith('ipcbor: a\\u202eb\\u2028c\\u2066 failed on connection 7 (unix): IPCBOR_ERR_HANDLER: bad\\u202etext\\x1b[2J'), line.slice(0, 120));
    assert.doesNotMatch(line, /[\u0000-\u001f\u202a-\u202e\u2028\u2029\u2066-\u2069]/);
    assert.ok(line.length < 1200, `${line.length} characters`);
    assert.match(line, /… \(\d+ characters\)$/);
  });
});
