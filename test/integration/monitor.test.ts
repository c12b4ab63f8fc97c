/**
 * `ipcbor monitor`, run as a user would: a child process in front of a real
 * service, clients calling through it (the extended protocol and the base
 * framing), and what it prints checked line by line; its output when
 * stdout is not read, and when stdout is closed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, serve, type Server } from '../../src/index.js';
import { tempSocket } from '../helpers.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A running monitor: its address, and its stdout as lines, with a way to wait for one. */
interface Running {
  child: ChildProcess;
  address: string;
  lines: string[];
  /** Resolves with the lines once one matches `pattern`. */
  until(pattern: RegExp): Promise<string[]>;
}

async function monitor(to: string, extra: string[] = []): Promise<Running> {
  const child = spawn(process.execPath, [cli, 'monitor', '--listen', 'tcp:127.0.0.1:0', '--to', to, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const first = await new Promise<string>((resolve) => createInterface({ input: child.stderr! }).once('line', resolve));
  const m = /^monitoring (tcp:127\.0\.0\.1:\d+) -> unix:/.exec(first);
  assert.ok(m, first);
  const lines: string[] = [];
  const waiting: { pattern: RegExp; resolve: (l: string[]) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiting.splice(0)) {
      if (w.pattern.test(l)) w.resolve(lines);
      else waiting.push(w);
    }
  });
  return {
    child,
    address: m[1]!,
    lines,
    until: (pattern) => (lines.some((l) => pattern.test(l)) ? Promise.resolve(lines) : new Promise((resolve) => waiting.push({ pattern, resolve }))),
  };
}

async function stop(r: Running): Promise<number> {
  r.child.kill('SIGINT');
  const [code] = (await once(r.child, 'exit')) as [number];
  return code;
}

/** A line without its time and sizes (they vary from run to run). */
const shape = (line: string) =>
  line
    .replace(/^\+\d+\.\d{3}ms /, '')
    .replace(/ \d+B/, '')
    .replace(/ \(\d+\.\d{3}ms\)/, ' (T)');

describe('ipcbor monitor', () => {
  let server: Server;
  before(async () => {
    server = await serve(
      {
        echo: (p: unknown) => p,
        fail: () => {
          throw new Error('no good \x1b[2J');
        },
        count: async function* (p: { n: number }) {
          for (let i = 0; i < p.n; i++) yield { i };
        },
        blob: () => new Uint8Array(100).fill(0xab),
      },
      `unix:${tempSocket()}`,
    );
  });
  after(() => server.close());

  it('prints every frame both ways: the hello, a call, an error, a stream, an event, a base-framing client', async () => {
    const r = await monitor(server.addresses[0]!);
    try {
      const client = await connect(r.address);
      assert.deepEqual(await client.call('echo', { message: 'hi', n: 1.5, tags: ['a'], raw: Uint8Array.of(1, 2) }), { message: 'hi', n: 1.5, tags: ['a'], raw: Uint8Array.of(1, 2) });
      await assert.rejects(client.call('fail'), /no good/);
      const items: unknown[] = [];
      for await (const x of await client.call<AsyncIterable<unknown>>('count', { n: 2 })) items.push(x);
      assert.deepEqual(items, [{ i: 0 }, { i: 1 }]);
      const got = new Promise((resolve) => client.subscribe('tick', resolve));
      await new Promise<void>((resolve) => {
        const tick = () => (server.emit('tick', { n: 7 }) > 0 ? resolve() : setImmediate(tick));
        tick();
      });
      assert.deepEqual(await got, { n: 7 });
      await client.call('blob');
      await client.close();
      const lines = await r.until(/^\+\S+ #\d+ close service:/);
      const conn = /#(\d+) open 127\.0\.0\.1:\d+$/.exec(lines[0]!)?.[1];
      assert.ok(conn, lines[0]);
      const shapes = lines.slice(1).map(shape);
      const c = `#${conn}`;
      assert.deepEqual(shapes.slice(0, 15), [
        `${c} -> HELLO $ipcbor.hello {"version": 1, "maxFrameBytes": 16777216, "window": 64}`,
        `${c} <- HELLO $ipcbor.hello ret=0 (T) {"version": 1, "maxFrameBytes": 16777216, "window": 64, "maxInflight": 1024, "server": "ipcbor"}`,
        `${c} -> CALL id=1 echo {"message": "hi", "n": 1.5, "tags": ["a"], "raw": h'0102'}`,
        `${c} <- RESULT id=1 echo (T) {"message": "hi", "n": 1.5, "tags": ["a"], "raw": h'0102'}`,
        `${c} -> CALL id=2 fail {}`,
        // The handler's text carried an escape sequence: shown, not sent to the terminal.
        `${c} <- ERROR id=2 fail IPCBOR_ERR_HANDLER: "no good \\u001b[2J" (T)`,
        `${c} -> CALL id=3 count {"n": 2}`,
        `${c} <- ITEM id=3 count (T) {"i": 0}`,
        `${c} <- ITEM id=3 count (T) {"i": 1}`,
        `${c} <- END id=3 count (T)`,
        `${c} -> CALL id=4 $ipcbor.subscribe {"event": "tick"}`,
        `${c} <- RESULT id=4 $ipcbor.subscribe (T) null`,
        `${c} <- EVENT tick {"n": 7}`,
        `${c} -> CALL id=5 blob {}`,
        `${c} <- RESULT id=5 blob (T) h'${'ab'.repeat(64)}' /+36 bytes/`,
      ]);
      assert.deepEqual(shapes.slice(15).sort(), [`${c} close client: IPCBOR_ERR_CONNECTION_CLOSED the connection closed`, `${c} close service: IPCBOR_ERR_CONNECTION_CLOSED the connection closed`]);
      // Sizes are the frames' bytes on the wire: a CALL's 8 bytes of lengths, its head [1, 1, "echo"] (8 bytes), its payload (32).
      const call = lines.find((l) => / CALL id=1 echo /.test(l))!;
      assert.match(call, / 48B /);

      // A client of the base framing: requests and responses, answered in order.
      const seen = lines.length;
      const base = await connect(r.address, { protocol: 'base' });
      assert.deepEqual(await base.call('echo', { x: 1 }), { x: 1 });
      await assert.rejects(base.call('fail'), /no good/);
      await base.close();
      const all = await r.until(new RegExp(`^\\+\\S+ #(?!${conn} )\\d+ close service:`));
      const baseLines = all.slice(seen).map(shape);
      const b = /^(#\d+) open/.exec(baseLines[0]!)?.[1];
      assert.ok(b, baseLines[0]);
      assert.deepEqual(baseLines.slice(1, 5), [`${b} -> REQUEST echo {"x": 1}`, `${b} <- RESPONSE echo ret=0 (T) {"x": 1}`, `${b} -> REQUEST fail {}`, `${b} <- RESPONSE fail ret=1 (T) "no good \\u001b[2J"`]);
    } finally {
      assert.equal(await stop(r), 130);
    }
  });

  it('--json prints one object per line, --max-bytes bounds each payload', async () => {
    const r = await monitor(server.addresses[0]!, ['--json', '--max-bytes', '40']);
    try {
      await using client = await connect(r.address);
      await client.call('echo', { text: 'y'.repeat(100) });
      await r.until(/"kind":"RESULT"/);
      const events = r.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(events[0]!.event, 'open');
      const conn = events[0]!.conn;
      const call = events.find((e) => e.kind === 'CALL')!;
      const result = events.find((e) => e.kind === 'RESULT')!;
      assert.deepEqual({ ...call, t: 0 }, { event: 'frame', t: 0, conn, dir: 'to-service', framing: 'extended', kind: 'CALL', size: 124, payloadSize: 108, id: 1, method: 'echo', payload: `{"text": "${'y'.repeat(30)}` + '/...cut/' });
      assert.equal(result.dir, 'to-client');
      assert.equal(result.method, 'echo');
      assert.equal(result.id, 1);
      assert.equal(typeof result.elapsed, 'number');
      assert.ok((result.t as number) >= (call.t as number));
    } finally {
      await stop(r);
    }
  });

  it('drops lines while stdout is not read, then says how many', async () => {
    const r = await monitor(server.addresses[0]!);
    try {
      r.child.stdout!.pause();
      // About 2 MB of output against a pipe that holds 64 KiB: lines must be dropped.
      await using client = await connect(r.address);
      const words = Array.from({ length: 60 }, () => 'x'.repeat(16));
      await Promise.all(Array.from({ length: 1000 }, () => client.call('echo', words)));
      r.child.stdout!.resume();
      const lines = await r.until(/^# \d+ lines dropped: the output was not read fast enough$/);
      // More lines may have come after the one waited for: the count is read from that one.
      const dropped = Number(/^# (\d+) lines dropped/.exec(lines.findLast((l) => /^# \d+ lines dropped/.test(l))!)![1]);
      const frames = lines.filter((l) => / (CALL|RESULT) id=/.test(l)).length;
      assert.ok(dropped > 0);
      assert.ok(frames < 2000, `${frames} frame lines`);
    } finally {
      await stop(r);
    }
  });

  it('ends quietly when stdout is closed', async () => {
    const r = await monitor(server.addresses[0]!);
    let stderr = '';
    r.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    r.child.stdout!.destroy();
    const exit = once(r.child, 'exit');
    // Each call prints lines: one of them meets the closed pipe (unless the
    // monitor saw the pipe close first and is gone already: fine too).
    const calls = (async () => {
      let client;
      try {
        client = await connect(r.address);
        for (;;) await client.call('echo', {});
      } catch {
        client?.destroy();
      }
    })();
    const [code] = (await exit) as [number];
    assert.equal(code, 0);
    assert.equal(stderr, '');
    await calls;
  });
});
