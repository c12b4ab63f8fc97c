/**
 * Services by name, the runtime directory's checks, one live server per
 * socket, stale sockets, close() removing only its own socket, and the
 * client's owner check: real sockets in temp dirs, servers in child
 * processes where a crash or a signal is the point. As root, other users
 * are played by uid 1 (chown, or a child process run as uid 1).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { connect, defineService, method, serve, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { rejectsWith, sleep, waitFor } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const timerServerJs = fileURLToPath(new URL('../../examples/timer/server.js', import.meta.url));
const builtIndexJs = fileURLToPath(new URL('../../src/index.js', import.meta.url));

/**
 * The library as another user can load it. A clone in a directory only its
 * owner may enter (a `mktemp -d` one, as CI's may be) is not readable to
 * them: then the built library is copied, once, to a directory everyone
 * may read. (It needs nothing but Node: dist/src has no other imports.)
 */
let readableIndexJs: string | undefined;
function indexJsForOthers(): string {
  if (readableIndexJs) return readableIndexJs;
  const src = dirname(builtIndexJs);
  if (openToOthers(builtIndexJs, 0o004)) return (readableIndexJs = builtIndexJs);
  const copy = mkdtempSync(join(tmpdir(), 'ipcbor-lib-'));
  bases.push(copy);
  cpSync(src, join(copy, 'src'), { recursive: true });
  writeFileSync(join(copy, 'package.json'), '{"type":"module"}');
  for (const p of [copy, ...walk(copy)]) chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
  return (readableIndexJs = join(copy, 'src', 'index.js'));
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : [p];
  });
}
const isRoot = process.getuid?.() === 0;

/** Can users other than the owner reach and run (or read) `path`: every directory above it searchable, the file itself `bits`? */
function openToOthers(path: string, bits: number): boolean {
  try {
    if ((statSync(path).mode & bits) !== bits) return false;
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return false;
      if (dirname(dir) === dir) return true;
    }
  } catch {
    return false;
  }
}

/**
 * A node binary another user may run: this one, unless it sits in a
 * private directory (Node 24 installed under a `mktemp -d`, as CI does),
 * then the system's.
 */
const nodeForOthers = [process.execPath, '/usr/bin/node', '/usr/local/bin/node'].find((p) => openToOthers(p, 0o005));

const bases: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill();
  for (const d of bases) rmSync(d, { recursive: true, force: true });
});
function tempBase(): string {
  const d = mkdtempSync(join(tmpdir(), 'ipcbor-rd-'));
  bases.push(d);
  return d;
}

const greeter = defineService({ name: 'greeter', version: '1.0.0', methods: { hello: method({ handler: (p: { name: string }) => `hello ${p.name}` }) } });

/** Set (or, with undefined, unset) environment variables until the end of the test. */
function setEnv(vars: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(vars)) {
    if (!(k in envBefore)) envBefore[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}
let envBefore: Record<string, string | undefined> = {};

let rundir = '';
beforeEach(() => {
  // Not created yet: the first server by name creates it.
  rundir = join(tempBase(), 'run');
  setEnv({ IPCBOR_RUNDIR: rundir });
});
afterEach(() => {
  for (const [k, v] of Object.entries(envBefore)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  envBefore = {};
});

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Spawn `node args…`, wait for its first stdout line. */
async function spawnUntilLine(args: string[], options: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<{ child: ChildProcess; line: string }> {
  const node = options.uid !== undefined ? nodeForOthers! : process.execPath;
  const child = spawn(node, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env }, ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}) });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before a line: ${stderr}`)));
  });
  return { child, line };
}

/** Run a module snippet as another user; returns the first line it prints. */
async function runAs(uid: number, code: string): Promise<string> {
  const { child, line } = await spawnUntilLine(['--input-type=module', '-e', code], { uid });
  await once(child, 'exit');
  return line;
}

/** serve() at `path` as another user: prints the error code of serve() or 'ok'. */
function serveAs(uid: number, path: string): Promise<string> {
  return runAs(
    uid,
    `import { serve } from ${JSON.stringify(indexJsForOthers())};
    try { const s = await serve({ ping: () => 'pong' }, ${JSON.stringify(`unix:${path}`)}); console.log('ok'); await s.close(); }
    catch (e) { console.log(e.code ?? String(e)); }`,
  );
}

const mode = (p: string) => lstatSync(p).mode & 0o777;

describe('services by name', () => {
  it('serves and connects by name in a runtime directory it creates with mode 0700', async () => {
    await using server = await serve(createTimer('by-name'), 'timer');
    assert.deepEqual(server.addresses, ['timer']);
    assert.equal(mode(rundir), 0o700);
    assert.ok(lstatSync(rundir).isDirectory());
    assert.ok(lstatSync(join(rundir, 'timer.sock')).isSocket());
    assert.equal(mode(join(rundir, 'timer.sock')), 0o600);
    await using client = await connect('timer');
    assert.equal(client.address, 'timer');
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    const r = await run(['call', 'timer', 'version', '--compact']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '"nim-timer v0.1.0"\n');
    await server.close();
    assert.equal(existsSync(join(rundir, 'timer.sock')), false, 'close() removed the socket');
  });

  it('says no service of that name is running (IPCBOR_ERR_CONNECT) when there is none', async () => {
    await rejectsWith(connect('nobody'), 'IPCBOR_ERR_CONNECT');
    mkdirSync(rundir, { mode: 0o700 });
    await rejectsWith(connect('nobody'), 'IPCBOR_ERR_CONNECT');
    const r = await run(['call', 'nobody', 'version']);
    assert.equal(r.code, 3);
  });

  it('refuses a runtime directory writable by group or others, a symlink, a file, or another user\'s', async () => {
    mkdirSync(rundir);
    chmodSync(rundir, 0o770);
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    chmodSync(rundir, 0o707);
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    rmSync(rundir, { recursive: true });

    const real = join(tempBase(), 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, rundir);
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.equal(existsSync(join(real, 'greeter.sock')), false);
    unlinkSync(rundir);

    writeFileSync(rundir, 'not a directory');
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    unlinkSync(rundir);

    if (isRoot) {
      mkdirSync(rundir, { mode: 0o700 });
      chownSync(rundir, 1, 1);
      await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
      await rejectsWith(connect('greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    }
  });

  it('creates only the last level of the runtime directory', async () => {
    process.env.IPCBOR_RUNDIR = join(tempBase(), 'missing', 'run');
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
  });

  it('refuses a name whose socket path would be too long, up front', async () => {
    process.env.IPCBOR_RUNDIR = join(tempBase(), 'd'.repeat(100));
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('greeter'), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.equal(existsSync(process.env.IPCBOR_RUNDIR), false, 'nothing was created');
    const r = await run(['call', 'greeter', 'hello']);
    assert.equal(r.code, 2);
  });
});

describe('one live server per socket', () => {
  it('refuses a second live server with IPCBOR_ERR_ALREADY_RUNNING, by name and by path', async () => {
    await using first = await serve(greeter, 'greeter');
    await rejectsWith(serve(greeter, 'greeter'), 'IPCBOR_ERR_ALREADY_RUNNING');
    const path = tempSocket();
    await using byPath = await serve(greeter, `unix:${path}`);
    await rejectsWith(serve(greeter, `unix:${path}`), 'IPCBOR_ERR_ALREADY_RUNNING');
    await using c = await connect('greeter');
    assert.equal(await c.call('hello', { name: 'first' }), 'hello first', 'the first server is untouched');
    assert.equal(first.addresses.length + byPath.addresses.length, 2);
  });

  it('lets exactly one of several servers started at once win, over a stale socket or none', async () => {
    for (const stale of [false, true]) {
      const path = tempSocket();
      if (stale) await leaveStaleSocket(path);
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => serve(greeter, `unix:${path}`)));
      const won = results.filter((r): r is PromiseFulfilledResult<Server> => r.status === 'fulfilled');
      assert.equal(won.length, 1, `one winner (stale: ${stale})`);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'IPCBOR_ERR_ALREADY_RUNNING');
      await using c = await connect(`unix:${path}`);
      assert.equal(await c.call('hello', { name: 'x' }), 'hello x');
      assert.deepEqual(readdirSync(dirname(path)), ['s.sock'], 'no lock file or temporary socket left by the losers');
      await won[0]!.value.close();
    }
  });

  it('replaces the stale socket of a SIGKILLed server', async () => {
    const { child, line } = await spawnUntilLine([timerServerJs, '--name', 'timer']);
    assert.equal(line, 'listening timer');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok(lstatSync(join(rundir, 'timer.sock')).isSocket(), 'the killed server left its socket');
    await rejectsWith(connect('timer'), 'IPCBOR_ERR_CONNECT');
    await using server = await serve(createTimer('second'), 'timer');
    await using c = await connect('timer');
    assert.equal((await c.call<{ timerName: string }>('echo', { req: { message: 'm', delayMs: 0 } })).timerName, 'second');
  });

  it('removes a lock file left by a dead process, and refuses a lock file that is a symlink', async () => {
    const path = tempSocket();
    await leaveStaleSocket(path);
    const dead = spawn(process.execPath, ['-e', '0']);
    await once(dead, 'exit');
    writeFileSync(`${path}.lock`, `${dead.pid}\n`);
    await using server = await serve(greeter, `unix:${path}`);
    assert.equal(existsSync(`${path}.lock`), false);

    const other = tempSocket();
    await leaveStaleSocket(other);
    const target = join(tempBase(), 'target');
    writeFileSync(target, 'keep');
    symlinkSync(target, `${other}.lock`);
    await rejectsWith(serve(greeter, `unix:${other}`), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.ok(lstatSync(`${other}.lock`).isSymbolicLink());
  });

  it('refuses a path that is a file, a directory or a symlink, and leaves it alone', async () => {
    const base = tempBase();
    const file = join(base, 'file.sock');
    writeFileSync(file, 'data');
    const dir = join(base, 'dir.sock');
    mkdirSync(dir);
    const victim = join(base, 'victim');
    writeFileSync(victim, 'precious');
    chmodSync(victim, 0o644);
    const link = join(base, 'link.sock');
    symlinkSync(victim, link);
    const dangling = join(base, 'dangling.sock');
    symlinkSync(join(base, 'nowhere'), dangling);
    const live = tempSocket();
    await using liveServer = await serve(greeter, `unix:${live}`);
    const toLive = join(base, 'tolive.sock');
    symlinkSync(live, toLive);
    for (const p of [file, dir, link, dangling, toLive]) await rejectsWith(serve(greeter, `unix:${p}`), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.ok(lstatSync(file).isFile());
    assert.ok(lstatSync(dir).isDirectory());
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(mode(victim), 0o644, 'nothing was chmodded through the symlink');
    assert.ok(lstatSync(dangling).isSymbolicLink());
    assert.equal(existsSync(join(base, 'nowhere')), false);
    assert.equal(liveServer.addresses.length, 1);
  });
});

describe('a lock path something else was put at', () => {
  /**
   * A server in a child process: it listens on `unix:first`, then tries
   * serve() at each path written to its stdin and prints the outcome as a
   * JSON line. A blocking open() would freeze it: no outcome, and `first`
   * no longer answering.
   */
  async function startTrier(first: string): Promise<{ child: ChildProcess; attempt(path: string): Promise<{ code: string; message?: string }> }> {
    const code = `import { serve } from ${JSON.stringify(builtIndexJs)};
      import { createInterface } from 'node:readline';
      await serve({ ping: () => 'pong' }, ${JSON.stringify(`unix:${first}`)});
      console.log('ready');
      for await (const path of createInterface({ input: process.stdin })) {
        try { const s = await serve({ ping: () => 'pong' }, 'unix:' + path); console.log(JSON.stringify({ code: 'ok' })); await s.close(); }
        catch (e) { console.log(JSON.stringify({ code: e.code ?? String(e), message: e.message })); }
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (what: string) => {
      // Only a bound on a wait for something that must happen: a frozen child never answers.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const frozen = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} from the server process within 10 s: is it frozen?`)), 10_000)));
      try {
        const r = await Promise.race([lines.next(), frozen]);
        if (r.done) throw new Error(`the server process ended before ${what}`);
        return r.value as string;
      } finally {
        clearTimeout(timer);
      }
    };
    assert.equal(await next('ready line'), 'ready');
    return {
      child,
      async attempt(path) {
        child.stdin!.write(`${path}\n`);
        return JSON.parse(await next(`outcome of serve() at ${path}`)) as { code: string; message?: string };
      },
    };
  }

  it('a FIFO, a directory or a symlink at <path>.lock: serve() fails at once, naming it, and the process keeps serving', async () => {
    const first = tempSocket();
    const trier = await startTrier(first);
    const base = tempBase();
    const fifo = join(base, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const plant: [string, (lock: string) => void, RegExp][] = [
      ['fifo.sock', (lock) => execFileSync('mkfifo', [lock]), /is a FIFO \(owned by uid \d+\), not a regular file/],
      ['dir.sock', (lock) => mkdirSync(lock), /is a directory \(owned by uid \d+\), not a regular file/],
      ['tofifo.sock', (lock) => symlinkSync(fifo, lock), /is a symbolic link \(owned by uid \d+\), not a regular file/],
    ];
    for (const [name, put, says] of plant) {
      const path = join(base, name);
      await leaveStaleSocket(path);
      put(`${path}.lock`);
      // The first listener is called while serve() runs, and again after it failed.
      const during = callPing(first);
      const outcome = await trier.attempt(path);
      assert.equal(outcome.code, 'IPCBOR_ERR_INVALID_ADDRESS', outcome.message);
      assert.match(outcome.message!, says);
      assert.ok(outcome.message!.includes(`${path}.lock`), outcome.message);
      assert.equal(await during, 'pong');
      assert.equal(await callPing(first), 'pong');
      assert.ok(lstatSync(path).isSocket(), 'the stale socket is left as it was');
      assert.ok(existsSync(`${path}.lock`) || lstatSync(`${path}.lock`).isSymbolicLink(), 'what was planted is left alone');
    }
    trier.child.kill();
  });

  it('a lock file of another user, left in a directory only we can write, is removed like ours once its process is gone', { skip: !isRoot && 'needs root to chown' }, async () => {
    const path = tempSocket();
    assert.equal(mode(dirname(path)), 0o700);
    await leaveStaleSocket(path);
    const dead = spawn(process.execPath, ['-e', '0']);
    await once(dead, 'exit');
    writeFileSync(`${path}.lock`, `${dead.pid}\n`);
    chownSync(`${path}.lock`, 1, 1);
    await using server = await serve(greeter, `unix:${path}`);
    assert.equal(existsSync(`${path}.lock`), false);
    assert.equal(await callHello(path), 'hello lock');
    assert.equal(server.addresses.length, 1);
  });
});

async function callHello(path: string): Promise<unknown> {
  await using c = await connect(`unix:${path}`);
  return c.call('hello', { name: 'lock' });
}

async function callPing(path: string): Promise<unknown> {
  await using c = await connect(`unix:${path}`, { connectTimeout: 5000 });
  return c.call('ping', {}, { timeout: 5000 });
}

describe('socket files', () => {
  it('has its mode from bind(): 0600 by default, permissions as asked, and the umask restored', async () => {
    const umask = process.umask();
    const a = tempSocket();
    await using sa = await serve(greeter, `unix:${a}`);
    assert.equal(mode(a), 0o600);
    const b = tempSocket();
    await using sb = await serve(greeter, `unix:${b}`, { permissions: 0o660 });
    assert.equal(mode(b), 0o660);
    assert.equal(process.umask(), umask);
    await rejectsWith(serve(greeter, `unix:${tempSocket()}`, { permissions: 0o1777 }), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.equal(sa.addresses.length + sb.addresses.length, 2);
  });

  it('leaves nothing but the socket in its directory', async () => {
    const path = tempSocket();
    await using server = await serve(greeter, `unix:${path}`);
    assert.deepEqual(readdirSync(join(path, '..')), ['s.sock']);
    await server.close();
    assert.deepEqual(readdirSync(join(path, '..')), []);
  });

  it('close() of a server whose socket file was replaced leaves the new server\'s socket alone', async () => {
    const path = tempSocket();
    const a = await serve(greeter, `unix:${path}`);
    unlinkSync(path);
    await using b = await serve(createTimer('b'), `unix:${path}`);
    await a.close();
    assert.ok(lstatSync(path).isSocket(), 'B\'s socket is still there');
    await using c = await connect(`unix:${path}`);
    assert.equal(await c.call('version'), 'nim-timer v0.1.0');
    assert.equal(b.addresses.length, 1);
  });

  it('close() leaves alone whatever replaced its socket file', async () => {
    const path = tempSocket();
    const a = await serve(greeter, `unix:${path}`);
    unlinkSync(path);
    writeFileSync(path, 'someone else\'s');
    a.destroy();
    await sleep(20);
    assert.ok(lstatSync(path).isFile());
  });
});

describe('a client checks whom it reaches', () => {
  it('refuses a socket owned by another user unless told to trust that uid (or any)', { skip: !isRoot && 'needs root to chown' }, async () => {
    const path = tempSocket();
    await using server = await serve(greeter, `unix:${path}`, { permissions: 0o666 });
    chownSync(path, 1, 1);
    await rejectsWith(connect(`unix:${path}`), 'IPCBOR_ERR_CONNECT');
    await rejectsWith(connect(`unix:${path}`, { socketOwner: 2 }), 'IPCBOR_ERR_CONNECT');
    for (const socketOwner of [1, 'any'] as const) {
      await using c = await connect(`unix:${path}`, { socketOwner });
      assert.equal(await c.call('hello', { name: String(socketOwner) }), `hello ${socketOwner}`);
    }
    const r = await run(['call', `unix:${path}`, 'hello', '{"name":"x"}']);
    assert.equal(r.code, 3);
    await server.close();
    assert.equal(existsSync(path), false, 'the server still removes its own (chowned) socket');
  });

  it('refuses a symlink to a socket unless socketOwner is any', async () => {
    const path = tempSocket();
    await using server = await serve(greeter, `unix:${path}`);
    const link = join(tempBase(), 'link.sock');
    symlinkSync(path, link);
    await rejectsWith(connect(`unix:${link}`), 'IPCBOR_ERR_CONNECT');
    await using c = await connect(`unix:${link}`, { socketOwner: 'any' });
    assert.equal(await c.call('hello', { name: 'l' }), 'hello l');
    assert.equal(server.addresses.length, 1);
  });

  it('refuses a socket of another user planted in the runtime directory', { skip: !isRoot && 'needs root to chown' }, async () => {
    await using server = await serve(greeter, 'greeter');
    chownSync(join(rundir, 'greeter.sock'), 1, 1);
    await rejectsWith(connect('greeter'), 'IPCBOR_ERR_CONNECT');
    await using c = await connect('greeter', { socketOwner: 1 });
    assert.equal(await c.call('hello', { name: 'g' }), 'hello g');
    assert.equal(server.addresses.length, 1);
  });
});

describe('as another user', { skip: (!isRoot && 'needs root to run a child as uid 1') || (nodeForOthers === undefined && 'no node binary another user may run') }, () => {
  it('reports a directory it may not write, another user\'s live or stale socket, as IPCBOR_ERR_INVALID_ADDRESS, not as running', async () => {
    // A directory uid 1 may not write.
    const closed = tempBase();
    chmodSync(closed, 0o755);
    assert.equal(await serveAs(1, join(closed, 'x.sock')), 'IPCBOR_ERR_INVALID_ADDRESS');

    // A sticky, world-writable directory like /tmp.
    const shared = tempBase();
    chmodSync(shared, 0o1777);
    // root's live socket, owner-only: uid 1 cannot even connect to it.
    const rootLive = join(shared, 'root-live.sock');
    await using s1 = await serve(greeter, `unix:${rootLive}`);
    assert.equal(await serveAs(1, rootLive), 'IPCBOR_ERR_INVALID_ADDRESS');
    // A stale socket of yet another user (uid 2), open to all: uid 1 may not replace it.
    const planted = join(shared, 'planted.sock');
    await leaveStaleSocket(planted);
    chmodSync(planted, 0o777);
    chownSync(planted, 2, 2);
    assert.equal(await serveAs(1, planted), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.equal(lstatSync(planted).uid, 2);
    // A regular file.
    const file = join(shared, 'file.sock');
    writeFileSync(file, '');
    assert.equal(await serveAs(1, file), 'IPCBOR_ERR_INVALID_ADDRESS');
    // And uid 1 may serve where it can.
    assert.equal(await serveAs(1, join(shared, 'mine.sock')), 'ok');
    assert.equal(existsSync(join(shared, 'mine.sock')), false);
    assert.equal(s1.addresses.length, 1);
  });

  it('a lock file another user put beside our stale socket in a shared directory is refused at once, naming them; in the runtime directory they can put none', async () => {
    const shared = tempBase();
    chmodSync(shared, 0o1777);
    const path = join(shared, 'x.sock');
    await leaveStaleSocket(path);
    // uid 1 claims the lock for pid 1, a process that never ends: it would read as "held" forever.
    assert.equal(await runAs(1, `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(`${path}.lock`)}, '1\\n'); console.log('planted');`), 'planted');
    assert.equal(lstatSync(`${path}.lock`).uid, 1);
    const err = await rejectsWith(serve(greeter, `unix:${path}`), 'IPCBOR_ERR_INVALID_ADDRESS');
    assert.match(err.message, /belongs to uid 1, not to you \(uid 0\)/);
    assert.ok(err.message.includes(`${path}.lock`) && err.message.includes('service name'), err.message);
    assert.doesNotMatch(err.message, /held by process/);
    assert.equal(lstatSync(`${path}.lock`).uid, 1, 'left for its owner to remove');
    assert.ok(lstatSync(path).isSocket());

    // The way past: a service name, in the runtime directory, where uid 1 can put nothing.
    await using server = await serve(greeter, 'x');
    const lock = join(rundir, 'x.sock.lock');
    const tried = await runAs(1, `import { writeFileSync } from 'node:fs'; try { writeFileSync(${JSON.stringify(lock)}, '1\\n'); console.log('planted'); } catch (e) { console.log(e.code); }`);
    assert.equal(tried, 'EACCES');
    await using c = await connect('x');
    assert.equal(await c.call('hello', { name: 'x' }), 'hello x');
    assert.equal(server.addresses.length, 1);
  });

  it('another user who made <tmpdir>/ipcbor-<uid> first: the runtime directory is in the home directory; with no home of our own, the error names them', async () => {
    const shared = tempBase();
    chmodSync(shared, 0o1777);
    const squatted = join(shared, 'ipcbor-0');
    assert.equal(await runAs(1, `import { mkdirSync } from 'node:fs'; mkdirSync(${JSON.stringify(squatted)}, { mode: 0o700 }); console.log('made');`), 'made');
    const home = tempBase();
    const othersHome = tempBase();
    chownSync(othersHome, 1, 1);
    setEnv({ IPCBOR_RUNDIR: undefined, XDG_RUNTIME_DIR: undefined, TMPDIR: shared, HOME: home });

    await using server = await serve(greeter, 'greeter');
    assert.ok(lstatSync(join(home, '.ipcbor', 'run', 'greeter.sock')).isSocket());
    assert.equal(mode(join(home, '.ipcbor')), 0o700);
    assert.equal(mode(join(home, '.ipcbor', 'run')), 0o700);
    await using c = await connect('greeter');
    assert.equal(await c.call('hello', { name: 'home' }), 'hello home');
    // Another process with the same environment finds the same directory.
    const r = await run(['call', 'greeter', 'hello', '{"name":"cli"}', '--compact']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '"hello cli"\n');
    assert.deepEqual(readdirSync(squatted), [], 'nothing went into the squatted directory');

    // No home of our own (another user's, or none): the shared temporary directory, which uid 1 holds.
    for (const noHome of [othersHome, join(home, 'missing')]) {
      setEnv({ HOME: noHome });
      const err = await rejectsWith(serve(greeter, 'other'), 'IPCBOR_ERR_INVALID_ADDRESS');
      assert.ok(err.message.includes(squatted), err.message);
      assert.match(err.message, /owned by uid 1, not by you \(uid 0\).*IPCBOR_RUNDIR/);
      await rejectsWith(connect('other'), 'IPCBOR_ERR_INVALID_ADDRESS');
    }
    assert.equal(server.addresses.length, 1);
  });
});

describe('ipcbor ls', () => {
  it('lists the services in the runtime directory, a hung one within the timeout', async () => {
    await using a = await serve(createTimer('a'), 'timer');
    await using b = await serve(greeter, 'greeter');
    // A service that accepts and never answers.
    const held: Socket[] = [];
    const hung: NetServer = createServer((s) => held.push(s));
    await new Promise<void>((r) => hung.listen(join(rundir, 'hung.sock'), r));
    writeFileSync(join(rundir, 'notes.txt'), 'not a service');
    try {
      const t0 = Date.now();
      const r = await run(['ls', '--json', '--timeout', '500']);
      const took = Date.now() - t0;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(took < 500 + 2500, `took ${took} ms`);
      const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; answers: boolean; server?: string; services?: { name: string; version: string }[] });
      assert.deepEqual(rows.map((x) => x.name), ['greeter', 'hung', 'timer']);
      const by = Object.fromEntries(rows.map((x) => [x.name, x]));
      assert.equal(by.timer!.answers, true);
      assert.equal(typeof by.timer!.server, 'string');
      assert.deepEqual(by.timer!.services, [{ name: 'timer', version: '0.1.0' }]);
      assert.deepEqual(by.greeter!.services, [{ name: 'greeter', version: '1.0.0' }]);
      assert.equal(by.hung!.answers, false);
      const table = await run(['ls']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^NAME +STATE/);
      assert.match(table.stdout, /\ntimer +up +\S+ +timer 0\.1\.0/);
      assert.equal(a.addresses.length + b.addresses.length, 2);
    } finally {
      for (const s of held) s.destroy();
      hung.close();
    }
  });

  it('exits 0 with nothing to list', async () => {
    const r = await run(['ls', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });
});

describe('signals', () => {
  it('the timer server started with --name removes its socket on SIGTERM and SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const { child, line } = await spawnUntilLine([timerServerJs, '--name', 'timer']);
      assert.equal(line, 'listening timer');
      assert.ok(lstatSync(join(rundir, 'timer.sock')).isSocket());
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.equal(existsSync(join(rundir, 'timer.sock')), false, `socket removed on ${signal}`);
    }
  });

  it('ipcbor subscribe stops cleanly on SIGTERM', async () => {
    await using server = await serve(createTimer('t'), 'timer');
    const child = spawn(process.execPath, [cli, 'subscribe', 'timer', '*'], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    await waitFor(() => server.connections === 1, 'the subscriber');
    await sleep(50);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 143);
    await waitFor(() => server.connections === 0, 'the subscriber gone');
  });
});

/** A socket file at `path` with nobody behind it, as a crashed server leaves. */
async function leaveStaleSocket(path: string): Promise<void> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(path, r));
  const { linkSync } = await import('node:fs');
  linkSync(path, `${path}.keep`);
  await new Promise<void>((r) => s.close(() => r()));
  linkSync(`${path}.keep`, path);
  unlinkSync(`${path}.keep`);
}
