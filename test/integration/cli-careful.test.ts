/**
 * The command line's care: a closed pipe, errors that say what to do, exit
 * statuses that mean one thing each, `help COMMAND`, `notify`, params from
 * stdin, paths as addresses. The CLI (dist/src/cli/main.js) runs in a child
 * process against real servers, as a user runs it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, createLoop, defineService, method, serve, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { tempSocket } from '../helpers.js';
import { rejectsWith, waitFor } from '../extended-helpers.js';
import { certs, openssl } from '../tls-helpers.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI; `stdin` is written to it (else it gets none); `during` runs while it does. */
async function run(args: string[], opts: { stdin?: string; cwd?: string; during?: (child: ReturnType<typeof spawn>) => Promise<void> } = {}): Promise<Run> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(opts.stdin ?? '');
  const closed = once(child, 'close');
  try {
    await opts.during?.(child);
  } finally {
    // Never left behind by a failed assertion.
    if (child.exitCode === null && child.signalCode === null && opts.during) setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
  }
  const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

/** A shell pipeline (`ipcbor ... | head -N`): the CLI's own exit status and output, as the shell sees them. */
async function piped(args: string[], lines: number, during?: () => Promise<void>): Promise<{ status: number; stdout: string; stderr: string }> {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('bash', ['-c', `'${process.execPath}' '${cli}' ${quoted} | head -${lines}; echo "status=\${PIPESTATUS[0]}" >&2`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = once(child, 'close');
  let stop = false;
  const driving = during ? (async () => {
    while (!stop) await during();
  })() : Promise.resolve();
  await closed;
  stop = true;
  await driving;
  const m = /status=(\d+)\s*$/.exec(stderr);
  assert.ok(m, `no status in ${stderr}`);
  return { status: Number(m[1]), stdout, stderr: stderr.slice(0, m.index) };
}

const feed = defineService({
  name: 'feed',
  version: '1',
  methods: {
    rows: method({
      handler: async function* (p: { count: number }) {
        for (let i = 0; i < p.count; i++) yield { i, text: `row ${i}` };
      },
    }),
    fail: method({
      handler: () => {
        throw new Error('it failed on purpose');
      },
    }),
    note: method({
      handler: (p: { text: string }) => {
        notes.push(p.text);
        return null;
      },
    }),
  },
  events: { tick: {} as never, tock: {} as never },
});
const notes: string[] = [];

describe('ipcbor with a closed stdout (| head)', () => {
  let server: Server;
  let address: string;
  before(async () => {
    server = await serve(feed, `unix:${tempSocket()}`);
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('call: a long stream piped into head -2 ends quietly, with 0', async () => {
    const r = await piped(['call', address, 'rows', '{"count":100000}'], 2);
    assert.equal(r.stdout, '{"i":0,"text":"row 0"}\n{"i":1,"text":"row 1"}\n');
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|error/i, r.stderr);
    assert.equal(r.status, 0, r.stderr);
  });

  it('subscribe: piped into head -1, it ends quietly with 0 at the next event', async () => {
    let n = 0;
    const r = await piped(['subscribe', address, 'tick'], 1, async () => {
      server.emit('tick', { n: n++ });
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    assert.match(r.stdout, /^\{"event":"tick","payload":\{"n":\d+\}\}\n$/);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|error/i, r.stderr);
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('ipcbor: what it says when something is wrong', () => {
  let server: Server;
  let address: string;
  before(async () => {
    server = await serve([createTimer('careful'), feed], `unix:${tempSocket()}`);
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('an unknown event is answered with the events the server has', async () => {
    const r = await run(['subscribe', address, 'tik']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^unknown event: tik\navailable events: .*\bon_echo_fired\b.*\bfeed\.tick\b.*\bfeed\.tock\b.*\(or \* for all\)/);
  });

  it('a word with a / or ending in .sock is a socket path, not a service name', async () => {
    const cwd = dirname(address.slice('unix:'.length));
    const file = basename(address);
    assert.ok(file.endsWith('.sock'));
    const bySock = await run(['call', file, 'version', '--compact'], { cwd });
    assert.equal(bySock.code, 0, bySock.stderr);
    assert.equal(bySock.stdout, '"nim-timer v0.1.0"\n');
    const bySlash = await run(['call', `./${file}`, 'version', '--compact'], { cwd });
    assert.equal(bySlash.code, 0, bySlash.stderr);
    // A name stays a name (and there is no such service).
    const byName = await run(['call', 'no-such-service', 'version'], { cwd });
    assert.equal(byName.code, 3);
    assert.match(byName.stderr, /no-such-service/);
  });

  it('a bad option value says what is wrong with it', async () => {
    const r = await run(['call', address, 'version', '--timeout', 'abc']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--timeout must be a number above 0 \(milliseconds\), not 'abc'/);
    for (const [option, args] of [
      ['timeout', ['describe', address, '--timeout', '0']],
      ['timeout', ['ls', '--timeout=-5']],
      ['count', ['subscribe', address, 'tick', '--count', '1.5']],
      ['connections', ['bench', address, 'version', '--connections', 'many']],
      ['duration', ['bench', address, 'version', '--duration', 'soon']],
      ['protocol', ['call', address, 'version', '--protocol', 'fast']],
    ] as const) {
      const bad = await run([...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, new RegExp(`--${option} must be .*'`), args.join(' '));
    }
  });

  it('help COMMAND prints the help of the command; help alone the overview', async () => {
    const call = await run(['help', 'call']);
    assert.equal(call.code, 0);
    assert.match(call.stdout, /^Usage: ipcbor call ADDRESS METHOD/);
    assert.match(call.stdout, /Exit status/);
    const all = await run(['help']);
    assert.equal(all.code, 0);
    for (const c of ['call', 'describe', 'subscribe', 'notify', 'ls', 'bench', 'relay']) assert.match(all.stdout, new RegExp(`\n {2}${c} +\\w`), c);
    const nope = await run(['help', 'frobnicate']);
    assert.equal(nope.code, 2);
    assert.match(nope.stderr, /unknown command 'frobnicate'/);
  });

  it('notify sends a one-way call; its params may come from stdin, as call\'s may', async () => {
    notes.length = 0;
    const r = await run(['notify', address, 'feed.note', '{"text":"one way"}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    await waitFor(() => notes.includes('one way'), 'the notification');
    const fromStdin = await run(['notify', address, 'feed.note', '-'], { stdin: '{"text":"from stdin"}\n' });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    await waitFor(() => notes.includes('from stdin'), 'the notification from stdin');
    const call = await run(['call', address, 'echo', '-', '--compact'], { stdin: '{"req":{"message":"piped","delayMs":0}}' });
    assert.equal(call.code, 0, call.stderr);
    assert.equal(call.stdout, '{"echoed":"piped","timerName":"careful"}\n');
    const empty = await run(['call', address, 'echo', '-'], { stdin: '' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /no params on stdin/);
    const bad = await run(['notify', address, 'feed.note', '-'], { stdin: '{nope' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /params are not valid JSON \(from stdin\)/);
  });

  it('notify says so, and sends nothing, when the server speaks only the base framing', async () => {
    await using baseOnly = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`, { extended: false });
    const r = await run(['notify', baseOnly.addresses[0]!, 'ping']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /speaks only the base framing, which has no one-way calls: nothing was sent/);
  });

  it('describe on a server with no methods says what it found', async () => {
    await using loop = createLoop();
    const [where] = await loop.serve(`unix:${tempSocket()}`);
    const r = await run(['describe', where!]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /describes no services and lists no methods/);
    const json = await run(['describe', where!, '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { services: [], methods: [] });
  });
});

/** A TCP server that accepts and never says a word: connecting to it times out at the hello. */
async function mute(): Promise<{ address: string; server: NetServer }> {
  const server = createServer((s) => s.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `tcp:127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

describe('ipcbor exit statuses: one meaning each, for every command', () => {
  let server: Server;
  let address: string;
  /** The feed alone: its events go by their bare names. */
  let events: Server;
  const absent = () => `unix:${tempSocket('absent.sock')}`;
  before(async () => {
    server = await serve([createTimer('exits'), feed], `unix:${tempSocket()}`);
    address = server.addresses[0]!;
    events = await serve(feed, `unix:${tempSocket()}`);
  });
  after(async () => {
    await server.close();
    await events.close();
  });

  it('0: success', async () => {
    for (const args of [['call', address, 'version'], ['describe', address], ['notify', address, 'feed.note', '{"text":"x"}'], ['ls'], ['subscribe', events.addresses[0]!, 'tick', '--count', '1']]) {
      const during = args[0] === 'subscribe' ? () => waitFor(() => events.emit('tick', { n: 1 }) > 0, 'the subscriber', 10_000) : undefined;
      const r = await run(args, during ? { during } : {});
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('1: the server answered with an error, or cannot do what was asked', async () => {
    const failed = await run(['call', address, 'feed.fail']);
    assert.equal(failed.code, 1);
    assert.equal(failed.stderr.trim(), 'it failed on purpose');
    assert.equal((await run(['call', address, 'nope'])).code, 1);
    assert.equal((await run(['subscribe', address, 'nope'])).code, 1);
    const bench = await run(['bench', address, 'feed.fail', '--duration', '0.2', '--json']);
    assert.equal(bench.code, 1, bench.stderr);
    await using baseOnly = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`, { extended: false });
    assert.equal((await run(['subscribe', baseOnly.addresses[0]!, 'x'])).code, 1);
  });

  it('2: usage', async () => {
    for (const args of [
      ['call', address],
      ['call', address, 'echo', '{nope'],
      ['call', 'http://nowhere', 'echo'],
      ['call', address, 'echo', '--bogus'],
      ['notify', address],
      ['bench', address],
      ['describe'],
      ['subscribe', address],
      ['ls', 'extra'],
      ['relay', '--listen', 'tcp:127.0.0.1:0'],
      ['call', address, 'version', '--ca', '/nonexistent/ca.pem'],
      ['frobnicate'],
      [],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('3: the server cannot be reached, or the connection failed', async () => {
    for (const args of [
      ['call', absent(), 'version'],
      ['describe', absent()],
      ['subscribe', absent(), 'tick'],
      ['notify', absent(), 'x'],
      ['bench', absent(), 'x', '--duration', '0.1'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /could not connect to unix:.*ENOENT/);
    }
    // The server going away under a subscriber.
    const going = await serve(feed, `unix:${tempSocket()}`);
    const r = await run(['subscribe', going.addresses[0]!, 'tick'], {
      during: async () => {
        await waitFor(() => going.emit('tick', { n: 1 }) > 0, 'the subscriber', 10_000);
        await going.close();
      },
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /the server closed the connection after 1 event/);
  });

  it('4: timed out (--timeout), waiting for the answer or connecting', async () => {
    const slow = await run(['call', address, 'echo', '{"req":{"message":"slow","delayMs":5000}}', '--timeout', '200']);
    assert.equal(slow.code, 4, slow.stderr);
    const m = await mute();
    try {
      for (const args of [
        ['call', m.address, 'version', '--timeout', '200'],
        ['describe', m.address, '--timeout', '200'],
      ]) {
        const r = await run(args);
        assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /timed out/);
      }
    } finally {
      m.server.close();
    }
  });

  it('130 on Ctrl-C, 143 on SIGTERM', async () => {
    for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const r = await run(['subscribe', events.addresses[0]!, 'tick'], {
        during: async (child) => {
          await waitFor(() => events.emit('tick', { n: 0 }) > 0, 'the subscriber', 10_000);
          child.kill(signal);
        },
      });
      assert.equal(r.code, status, `${signal}: ${r.stderr}`);
    }
  });

  it('the statuses are in --help and in the README', async () => {
    const r = await run(['--help']);
    for (const line of [/ 0 +success/, / 1 +the server answered with an error/, / 2 +usage/, / 3 +the server could not be reached/, / 4 +timed out/, / 130 +interrupted/]) assert.match(r.stdout, line);
    const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
    const section = readme.slice(readme.indexOf('## The command line'), readme.indexOf('## Limits'));
    for (const row of [/^\| 0 \| success/m, /^\| 1 \| the server answered with an error/m, /^\| 2 \| usage/m, /^\| 3 \| the server could not be reached/m, /^\| 4 \| timed out/m, /^\| 130, 143 \| interrupted/m]) {
      assert.match(section, row);
    }
  });
});

describe('a TLS port and a plaintext one mistaken for each other', { skip: openssl.skip }, () => {
  let tlsServer: Server;
  let mutual: Server;
  let plain: Server;
  before(async () => {
    const c = certs();
    tlsServer = await serve(createTimer('tls'), 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key } });
    mutual = await serve(createTimer('mtls'), 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key, clientCa: c.ca } });
    plain = await serve(createTimer('plain'), 'tcp:127.0.0.1:0');
  });
  after(async () => {
    await tlsServer.close();
    await mutual.close();
    await plain.close();
  });

  it('tcp: against a TLS port: connect() fails, saying to use tls:', async () => {
    const tlsAddress = tlsServer.addresses[0]!;
    const asTcp = tlsAddress.replace(/^tls:/, 'tcp:');
    const err = await rejectsWith(connect(asTcp, { connectTimeout: 5000 }), 'IPCBOR_ERR_CONNECT');
    assert.match(err.message, new RegExp(`this looks like a TLS port .*: use ${tlsAddress}$`));
    const r = await run(['call', asTcp, 'version']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /this looks like a TLS port/);
  });

  it('a base-framing peer that closes on the hello is still taken for one', async () => {
    // The C server drops a request it does not know; this one too.
    const baseOnly = createServer((s) => {
      s.on('error', () => {});
      s.once('data', (d: Buffer) => (d.includes('$ipcbor.hello') ? s.destroy() : s.end(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0xf6]))));
    });
    await new Promise<void>((resolve) => baseOnly.listen(0, '127.0.0.1', resolve));
    try {
      await using client = await connect(`tcp:127.0.0.1:${(baseOnly.address() as { port: number }).port}`, { connectTimeout: 5000 });
      assert.equal(client.protocol, 'base');
    } finally {
      baseOnly.close();
    }
  });

  it('tls: against a plaintext port: says the server does not speak TLS there, and to try tcp:', async () => {
    const c = certs();
    const plainAddress = plain.addresses[0]!;
    const asTls = plainAddress.replace(/^tcp:/, 'tls:');
    const err = await rejectsWith(connect(asTls, { tls: { ca: c.ca }, connectTimeout: 5000 }), 'IPCBOR_ERR_CONNECT');
    assert.match(err.message, new RegExp(`does not speak TLS there .*use ${plainAddress}$`));
    const r = await run(['call', asTls, 'version', '--ca', c.caFile]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /does not speak TLS there/);
  });

  it('a server that requires a client certificate: says so, and the CLI names --cert and --key', async () => {
    const c = certs();
    const err = await rejectsWith(connect(mutual.addresses[0]!, { tls: { ca: c.ca }, connectTimeout: 5000 }), 'IPCBOR_ERR_CONNECT');
    assert.match(err.message, /requires a client certificate/);
    const r = await run(['call', mutual.addresses[0]!, 'version', '--ca', c.caFile]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /requires a client certificate/);
    assert.match(r.stderr, /--cert FILE --key FILE/);
    const ok = await run(['call', mutual.addresses[0]!, 'version', '--ca', c.caFile, '--cert', c.alice.certFile, '--key', c.alice.keyFile]);
    assert.equal(ok.code, 0, ok.stderr);
  });
});
