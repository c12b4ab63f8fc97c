/**
 * The command line against a server that wants to harm its user: strings
 * that carry terminal control sequences (clear the screen, set the window
 * title, ring the bell, C1 controls, bidirectional overrides) in every
 * place a server controls, and events larger than a slow stdout takes.
 * The real CLI (dist/src/cli/main.js) in a child process, as a user runs it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { createServer } from 'node:net';
import { cbor } from '../../src/core/codec/cbor.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { encodeExtended, encodeResponse } from '../../src/core/frame/encoder.js';
import { Kind } from '../../src/core/protocol/heads.js';
import { defineService, method, serve, type Server } from '../../src/index.js';
import { drainedOrClosed } from '../drain.js';
import { tempSocket } from '../helpers.js';
import { waitFor } from '../extended-helpers.js';

/** Each kind of hostile character, in one string. */
const EVIL = 'x\u001b[2J\u001b]0;pwned\u0007\u0007\u009b31m\u0085\u202eevil\r\n';
/** What may not reach the terminal raw: C0 but newline, DEL, C1, the bidi controls. */
const RAW_HUMAN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function assertClean(text: string, where: string): void {
  const m = RAW_HUMAN.exec(text);
  assert.equal(m, null, `${where}: raw U+${m?.[0].charCodeAt(0).toString(16).padStart(4, '0')} in ${JSON.stringify(text)}`);
}

/** The escaped form is still there to read. */
function assertVisible(text: string, where: string, json = false): void {
  const esc = json ? /\\u001b\[2J/ : /\\x1b\[2J/;
  assert.match(text, esc, `${where}: ESC shown escaped`);
  assert.match(text, json ? /\\u009b31m/ : /\\x9b31m/, `${where}: C1 CSI shown escaped`);
  assert.match(text, /\\u202eevil/, `${where}: the bidi override shown escaped`);
}

describe('the CLI against a hostile server', () => {
  let server: Server;
  let address: string;
  before(async () => {
    const evil = defineService({
      name: `svc${EVIL}`,
      version: `1${EVIL}`,
      description: `about${EVIL}`,
      methods: {
        [`m${EVIL}`]: method({ description: `does${EVIL}`, handler: () => EVIL }),
        fail: method({
          handler: () => {
            throw new Error(`failed${EVIL}`);
          },
        }),
      },
      events: { [`ev${EVIL}`]: {} as never },
    });
    server = await serve(evil, `unix:${tempSocket()}`);
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('call: the result (JSON), the error text and the list of methods are escaped', async () => {
    const ok = await run(['call', address, `m${EVIL}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assertClean(ok.stdout, 'call result');
    assert.equal(JSON.parse(ok.stdout), EVIL, 'the JSON keeps its value');
    assertVisible(ok.stdout, 'call result', true);

    const failed = await run(['call', address, 'fail']);
    assert.equal(failed.code, 1);
    assertClean(failed.stderr, 'call error');
    assertVisible(failed.stderr, 'call error');

    const unknown = await run(['call', address, 'nope']);
    assert.equal(unknown.code, 1);
    assertClean(unknown.stderr, 'available methods');
    assert.match(unknown.stderr, /available methods: .*m x\\x1b\[2J|available methods: .*mx\\x1b\[2J/);
    assertVisible(unknown.stderr, 'available methods');
  });

  it('describe: every name, version and description is escaped, in text and in --json', async () => {
    const text = await run(['describe', address]);
    assert.equal(text.code, 0, text.stderr);
    assertClean(text.stdout, 'describe');
    assertVisible(text.stdout, 'describe');
    assert.match(text.stdout, /^svcx\\x1b\[2J/, 'the service name is still there to read');
    assert.match(text.stdout, /evil\\x0d\\x0a/, 'a server may not start lines of its own');

    const json = await run(['describe', address, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assertClean(json.stdout, 'describe --json');
    assertVisible(json.stdout, 'describe --json', true);
    const d = JSON.parse(json.stdout) as { services: { name: string; version: string }[] };
    assert.equal(d.services[0]!.name, `svc${EVIL}`, 'the JSON keeps its value');
  });

  it('subscribe: the event name and payload are escaped', async () => {
    const child = spawn(process.execPath, [cliPath, 'subscribe', address, '*', '--count', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(() => server.emit(`ev${EVIL}`, { text: EVIL }) === 1, 'the subscriber', 10_000);
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, stderr);
    assertClean(stdout, 'subscribe');
    assertVisible(stdout, 'subscribe', true);
    assert.deepEqual(JSON.parse(stdout), { event: `ev${EVIL}`, payload: { text: EVIL } });
  });

  it('ls: the server name and service versions are escaped, in the table and in --json', async () => {
    const dir = tempSocket().replace(/\/s\.sock$/, '');
    const named = await serve(
      defineService({ name: `svc${EVIL}`, version: `9${EVIL}`, methods: { ping: method({ handler: () => 1 }) } }),
      `unix:${dir}/evil.sock`,
    );
    try {
      const env = { ...process.env, IPCBOR_RUNDIR: dir };
      const table = await run(['ls'], env);
      assert.equal(table.code, 0, table.stderr);
      assertClean(table.stdout, 'ls');
      assertVisible(table.stdout, 'ls');
      assert.match(table.stdout, /^evil\s+up\s/m);
      const json = await run(['ls', '--json'], env);
      assert.equal(json.code, 0, json.stderr);
      assertClean(json.stdout, 'ls --json');
      assertVisible(json.stdout, 'ls --json', true);
      assert.equal((JSON.parse(json.stdout) as { services: { version: string }[] }).services[0]!.version, `9${EVIL}`);
    } finally {
      await named.close();
    }
  });
});

const cliPath = new URL('../../src/cli/main.js', import.meta.url).pathname;

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number, stdout, stderr }));
}

const MiB = 1024 * 1024;

/** Resident memory of a process, from /proc (MiB). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/**
 * A server that answers the hello and the subscribe, then pushes `count`
 * EVENT frames of 1 MiB as fast as the socket takes them: each write waits
 * for 'drain' when the socket is backed up, so `pushed` stops growing as
 * soon as the client stops reading.
 */
async function pusher(count: number) {
  const frame = Buffer.concat(encodeExtended(cbor.encode([Kind.Event, 'blob']), cbor.encode(new Uint8Array(MiB).fill(0xab))));
  const state = { pushed: 0, waiting: false, done: false };
  const path = tempSocket();
  const server = createServer((s) => {
    s.on('error', () => {});
    const decoder: FrameDecoder = new FrameDecoder('request', {
      request: () => {
        decoder.mode = 'extended';
        for (const p of encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 16 * MiB, window: 64, server: 'pusher' }))) s.write(p);
      },
      extended: (head) => {
        // The subscribe (the only call): answer it, then push.
        const id = (cbor.decode(head) as unknown[])[1];
        for (const p of encodeExtended(cbor.encode([Kind.Result, id]), cbor.encode(null))) s.write(p);
        void (async () => {
          for (; state.pushed < count && !s.destroyed; state.pushed++) {
            if (!s.write(frame)) {
              state.waiting = true;
              await drainedOrClosed(s);
              state.waiting = false;
            }
          }
          state.done = true;
        })();
      },
    });
    s.on('data', (c: Buffer) => decoder.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { address: `unix:${path}`, state, close: () => server.close() };
}

describe('ipcbor subscribe with a stdout nobody reads', () => {
  const EVENTS = 200;

  it('stops reading the connection once stdout backs up: its memory stays bounded, and it goes on when stdout is read', async (t) => {
    const server = await pusher(EVENTS);
    const child = spawn(process.execPath, [cliPath, 'subscribe', server.address, 'blob'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      // stdout is a pipe this test does not read for now.
      child.stdout.pause();
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      await waitFor(() => server.state.pushed > 0, 'the subscriber', 10_000);
      const base = rssOf(child.pid!);
      // Until everything went (what a CLI that reads on regardless does), or
      // the server waits on a connection no longer read while the CLI's
      // memory no longer changes.
      let peak = base;
      let last = -1;
      let still = 0;
      while (!server.state.done && still < 20) {
        await new Promise((r) => setTimeout(r, 25));
        const rss = rssOf(child.pid!);
        peak = Math.max(peak, rss);
        still = server.state.waiting && rss === last ? still + 1 : 0;
        last = rss;
      }
      const pushed = server.state.pushed;
      t.diagnostic(`the server pushed ${pushed} MiB; the CLI's resident set went from ${Math.round(base)} to at most ${Math.round(peak)} MiB`);
      // The CLI holds its queue's bound (4 MiB), a line waiting on stdout
      // and the socket buffers: not the 200 MiB (400 MiB of JSON) on offer.
      assert.ok(!server.state.done && pushed < 40, `the server pushed ${pushed} MiB before the CLI stopped reading`);
      assert.ok(peak - base < 96, `the CLI grew by ${Math.round(peak - base)} MiB (from ${Math.round(base)} MiB)`);

      // Now read: the CLI reads the connection again, and every event arrives.
      let received = 0;
      for await (const line of createInterface({ input: child.stdout })) {
        assert.equal((JSON.parse(line) as { event: string }).event, 'blob');
        if (++received === EVENTS) break;
      }
      assert.equal(server.state.pushed, EVENTS);
      assert.equal(stderr, '');
      // Ctrl-C still ends it.
      child.kill('SIGINT');
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 130);
    } finally {
      // A CLI that is not done yet may wait for ever on a stdout nobody reads.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      server.close();
    }
  });
});
