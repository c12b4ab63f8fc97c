#!/usr/bin/env node
// Checks the package as users get it: `npm pack`, then install the tarball
// into a fresh project outside the repository and use it from there.
//
//   - the tarball ships what users need and nothing they don't;
//   - no package of ipcbor's production dependency tree has an install script;
//   - a typed client and server (the README's greeter, `await using`
//     included) compile with `strict` and `module: nodenext` against the
//     installed .d.ts, on the newest TypeScript (the repository's) and the
//     oldest supported one (TS_MIN below), and a wrong call does not compile;
//   - they run: the server on a unix socket, the client's round trip;
//   - the installed `ipcbor` command: `--help`, and `call` against that server;
//   - `ipcbor/core`, `ipcbor/browser` and `ipcbor/package.json` resolve;
//   - publint and @arethetypeswrong/cli (profile esm-only) find nothing.
//
// The installed package runs on the Node that runs this script, so
// `/path/to/node20.x scripts/check-package.mjs` checks it on that Node.
// Needs the npm registry or npm's cache (ws, @standard-schema/spec, and
// typescript@TS_MIN unless IPCBOR_TSC_MIN names a tsc to use instead).
// Set IPCBOR_KEEP=1 to keep the temporary project.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The oldest TypeScript ipcbor's declarations compile with (5.7 made Uint8Array generic, which the browser client's WebSocket type uses); the README says the same. */
const TS_MIN = '5.7.2';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'ipcbor-pkg-'));
const project = join(work, 'consumer');
// Children (npm, npx, the installed bin's `#!/usr/bin/env node`) run on this Node.
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`, npm_config_update_notifier: 'false' };
let server;

function fail(message) {
  console.error(`\ncheck-package: FAILED: ${message}`);
  if (process.env.IPCBOR_KEEP) console.error(`(the temporary project is kept in ${work})`);
  cleanup();
  process.exit(1);
}
function cleanup() {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  if (!process.env.IPCBOR_KEEP) rmSync(work, { recursive: true, force: true });
}
function step(what) {
  console.log(`== ${what}`);
}
/** Runs a command to completion; fails the check unless it exits 0. */
function run(cmd, args, { cwd = project, what = `${cmd} ${args.join(' ')}`, quiet = false, withEnv = env } = {}) {
  const r = spawnSync(cmd, args, { cwd, env: withEnv, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) fail(`${what}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} exited with ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
  if (!quiet && r.stdout.trim()) console.log(r.stdout.trimEnd());
  return r.stdout;
}

process.once('SIGINT', () => fail('interrupted'));
console.log(`check-package: ${pkg.name}@${pkg.version} on node ${process.version}, in ${work}`);

// 1. The tarball, built from this checkout (prepack builds).
step('npm pack');
const packOut = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: repo, quiet: true, withEnv: process.env });
// prepack's own output may come before the JSON.
const packed = JSON.parse(packOut.slice(packOut.search(/^\[/m)));
const tarball = join(work, packed[0].filename);
const shipped = new Set(packed[0].files.map((f) => f.path));
for (const need of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'SECURITY.md', 'scripts/make-certs.sh', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'dist/src/core/index.js', 'dist/src/browser/index.js', 'docs/PROTOCOL.md', 'docs/api/README.md', 'conformance/vectors.json']) {
  if (!shipped.has(need)) fail(`the tarball lacks ${need}`);
}
for (const path of shipped) {
  if (/^(BENCHMARKS\.md|bench\/|test\/|dist\/test\/|dist\/bench\/|dist\/examples\/|examples\/|\.ci\/|node_modules\/)/.test(path) || /\.tsbuildinfo$/.test(path)) {
    fail(`the tarball ships ${path}, which users do not need`);
  }
}
console.log(`${packed[0].filename}: ${shipped.size} files, ${(packed[0].size / 1024).toFixed(0)} KiB packed`);

// 2. A fresh project, the tarball installed into it.
step('npm install the tarball into a fresh project');
mkdirSync(project);
writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'ipcbor-consumer', private: true, type: 'module' }, null, 2));
run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball]);

// 3. No install script anywhere in what that installed (ipcbor's production tree).
step('no install scripts in the production dependency tree');
const installed = [];
(function walk(dir) {
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      walk(join(dir, name));
      continue;
    }
    const at = join(dir, name);
    const manifest = join(at, 'package.json');
    if (!existsSync(manifest)) continue;
    installed.push(at);
    walk(join(at, 'node_modules'));
  }
})(join(project, 'node_modules'));
for (const at of installed) {
  const m = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8'));
  const scripts = ['preinstall', 'install', 'postinstall'].filter((s) => m.scripts?.[s]);
  // npm runs node-gyp for a binding.gyp with no install script of its own.
  if (existsSync(join(at, 'binding.gyp'))) scripts.push('binding.gyp (node-gyp rebuild)');
  if (scripts.length) fail(`${m.name}@${m.version} has an install script: ${scripts.join(', ')}`);
}
console.log(installed.map((at) => JSON.parse(readFileSync(join(at, 'package.json'), 'utf8'))).map((m) => `${m.name}@${m.version}`).join(', '));
const expected = ['ipcbor', ...Object.keys(pkg.dependencies)].sort();
const names = installed.map((at) => JSON.parse(readFileSync(join(at, 'package.json'), 'utf8')).name).sort();
if (names.join() !== expected.join()) fail(`installed ${names.join(', ')}; expected exactly ${expected.join(', ')}`);

// 4. The consumer's sources, as a user writes them.
// The README's greeter (examples/greeter/greeter.ts), importing the package.
const greeterSource = readFileSync(join(repo, 'examples/greeter/greeter.ts'), 'utf8');
if (!greeterSource.includes("from '../../src/index.js'")) fail('examples/greeter/greeter.ts no longer imports ../../src/index.js');
writeFileSync(join(project, 'greeter.ts'), greeterSource.replace("from '../../src/index.js'", "from 'ipcbor'"));
writeFileSync(
  join(project, 'server.ts'),
  `import { serve } from 'ipcbor';
import { greeter } from './greeter.js';

const server = await serve(greeter, process.argv[2] ?? 'greeter');
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
console.log(\`listening \${server.addresses[0]}\`);
`,
);
writeFileSync(
  join(project, 'client.ts'),
  `import { connect, IpcborError, type Remote } from 'ipcbor';
import type { Greeter } from './greeter.js';

await using client = await connect(process.argv[2] ?? 'greeter');
const g: Remote<Greeter> = client.service<Greeter>();
const { text } = await g.hello({ name: 'ada', times: 2 });
const checked: string = text;
console.log(checked);
try {
  // @ts-expect-error: the params are typed from the service's type
  await g.hello({ name: 42 });
  throw new Error('invalid params were accepted');
} catch (err) {
  if (!(err instanceof IpcborError)) throw err;
  console.log(\`refused: \${err.code}\`);
}
`,
);
writeFileSync(
  join(project, 'entries.ts'),
  `// The other entry points, typed.
import { connect as browserConnect, type BrowserConnectOptions } from 'ipcbor/browser';
import { createCodec } from 'ipcbor/core';

const options: BrowserConnectOptions = { reconnect: true };
const codec = createCodec();
const bytes: Uint8Array = codec.encode({ a: 1 });
console.log(typeof browserConnect, options.reconnect, bytes.length);
`,
);
writeFileSync(
  join(project, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        // ipcbor's own .d.ts are checked, not skipped.
        skipLibCheck: false,
        // @types/node from the repository (what a Node user installs; not a dependency of ipcbor).
        typeRoots: [join(repo, 'node_modules/@types')],
        types: ['node'],
        outDir: 'out',
      },
      files: ['greeter.ts', 'server.ts', 'client.ts', 'entries.ts'],
    },
    null,
    2,
  ),
);

// 5. Compile with the newest and the oldest supported TypeScript.
// tsc runs on the Node first on the caller's PATH (TypeScript 7's tsc needs a
// newer Node than the oldest ipcbor supports); what it compiles runs on this one.
function tscVersion(tsc) {
  return run(tsc, ['--version'], { quiet: true, withEnv: process.env }).trim();
}
const tscLatest = join(repo, 'node_modules/typescript/bin/tsc');
if (!existsSync(tscLatest)) fail(`no TypeScript in ${join(repo, 'node_modules')}: run npm ci first`);
let tscMin = process.env.IPCBOR_TSC_MIN;
if (!tscMin) {
  step(`npm install typescript@${TS_MIN} (outside the consumer project)`);
  const prefix = join(work, 'ts-min');
  mkdirSync(prefix);
  run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', prefix, `typescript@${TS_MIN}`], { cwd: work, quiet: true });
  tscMin = join(prefix, 'node_modules/typescript/bin/tsc');
}
for (const tsc of [tscMin, tscLatest]) {
  const version = tscVersion(tsc);
  step(`tsc (${version}) --strict --module nodenext, against the installed package`);
  run(tsc, ['-p', 'tsconfig.json'], { what: `${version}: the consumer project does not compile`, withEnv: process.env });
}

// 6. Run it: the server on a unix socket, the client, the installed bin.
step('the compiled server and client, a round trip over a unix socket');
const address = `unix:${join(work, 'greeter.sock')}`;
server = spawn(process.execPath, ['out/server.js', address], { cwd: project, env, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((ready) => {
  const timer = setTimeout(() => fail('the server did not say "listening" within 20 s'), 20_000);
  const early = (code, signal) => fail(`the server exited with ${code ?? signal} before listening`);
  server.once('exit', early);
  createInterface({ input: server.stdout }).on('line', (line) => {
    console.log(`server: ${line}`);
    if (line.startsWith('listening ')) {
      clearTimeout(timer);
      server.off('exit', early);
      ready();
    }
  });
});
const out = run(process.execPath, ['out/client.js', address], { what: 'the client' });
if (!out.includes('hello adahello ada') || !out.includes('refused: IPCBOR_ERR_INVALID_PARAMS')) {
  fail(`the client printed something else than the round trip's answer and refusal:\n${out}`);
}

step('the installed bin: npx ipcbor --help, ipcbor call');
const help = run('npx', ['--no-install', 'ipcbor', '--help'], { quiet: true });
if (!/Usage: ipcbor COMMAND/.test(help)) fail(`ipcbor --help printed no usage:\n${help}`);
const called = run('npx', ['--no-install', 'ipcbor', 'call', address, 'hello', '{"name":"bob"}']);
if (JSON.parse(called).text !== 'hello bob') fail(`ipcbor call printed ${called}`);

step('the other entry points resolve and load');
run(process.execPath, ['out/entries.js']);
run(process.execPath, [
  '--input-type=module',
  '-e',
  `import { createRequire } from 'node:module';
   const b = await import('ipcbor/browser'), c = await import('ipcbor/core'), m = await import('ipcbor');
   for (const [name, mod] of [['ipcbor/browser', b], ['ipcbor/core', c], ['ipcbor', m]]) if (typeof mod.defineService !== 'function') throw new Error(name + ' has no defineService');
   if (typeof b.connect !== 'function') throw new Error('ipcbor/browser has no connect');
   if (createRequire(import.meta.url)('ipcbor/package.json').version !== '${pkg.version}') throw new Error('ipcbor/package.json');
   console.log('ipcbor, ipcbor/core, ipcbor/browser, ipcbor/package.json: ok');`,
]);

server.kill('SIGTERM');
const stopped = await new Promise((done) => {
  const timer = setTimeout(() => done(null), 10_000);
  server.once('exit', (code) => (clearTimeout(timer), done(code)));
});
if (stopped !== 0) fail(`the server did not stop cleanly on SIGTERM (exit ${stopped})`);
if (existsSync(join(work, 'greeter.sock'))) fail('the server left its socket file behind');

// 7. Linters of the package as published: publint and arethetypeswrong.
const bin = (name) => join(repo, 'node_modules/.bin', name);
if (!existsSync(bin('publint')) || !existsSync(bin('attw'))) fail('publint or attw missing from node_modules: run npm ci first');
step('publint (strict) on the installed package');
run(bin('publint'), ['run', join(project, 'node_modules/ipcbor'), '--pack', 'false', '--strict'], { cwd: work });
step('attw --profile esm-only on the tarball');
run(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'table-flipped', '--no-color'], { cwd: work });

cleanup();
console.log('\ncheck-package: ok');
