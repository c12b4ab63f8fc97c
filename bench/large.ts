/**
 * `node dist/bench/large.js [MiB]`: one large message (default 64 MiB, a
 * byte string) echoed through ipcbor, server in its own process, and the
 * peak memory (max RSS) each side reached for it, against the message size.
 * A side that copies the message once holds about two of it at the peak
 * (the message and its copy in flight); each further copy adds one.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, serve } from '../src/index.js';

const MiB = 1024 * 1024;
const maxRss = () => process.resourceUsage().maxRSS * 1024;

if (process.argv[2] === '--serve') {
  const size = Number(process.argv[4]);
  const limits = { maxFrameBytes: size + MiB, maxConnectionBytes: 4 * size, maxServerBytes: 8 * size };
  const server = await serve({ echo: (p: unknown) => p, rss: () => ({ maxRss: maxRss(), rss: process.memoryUsage().rss }) }, `unix:${process.argv[3]}`, limits);
  process.send!('ready');
  process.on('disconnect', () => void server.close().then(() => process.exit(0)));
} else {
  const mib = Number(process.argv[2] ?? 64);
  const size = mib * MiB;
  const dir = mkdtempSync(join(tmpdir(), 'ipcbor-large-'));
  const path = join(dir, 's.sock');
  const child = fork(fileURLToPath(import.meta.url), ['--serve', path, String(size)], { stdio: 'inherit' });
  await new Promise((r) => child.once('message', r));
  try {
    const client = await connect(`unix:${path}`, { maxFrameBytes: size + MiB });
    const before = (await client.call<{ maxRss: number; rss: number }>('rss')).rss;
    const data = new Uint8Array(size).fill(1);
    const clientBase = process.memoryUsage().rss;
    const t0 = performance.now();
    const got = await client.call<{ data: Uint8Array }>('echo', { data });
    const ms = performance.now() - t0;
    if (got.data.length !== size) throw new Error('wrong size back');
    const server = await client.call<{ maxRss: number }>('rss');
    const row = (who: string, base: number, peak: number) =>
      `${who.padEnd(7)} | ${(base / MiB).toFixed(0).padStart(9)} | ${(peak / MiB).toFixed(0).padStart(9)} | ${((peak - base) / MiB).toFixed(0).padStart(10)} | ${((peak - base) / size).toFixed(2).padStart(8)}`;
    console.log(`one ${mib} MiB byte string echoed in ${ms.toFixed(0)} ms (${((2 * size) / MiB / (ms / 1000)).toFixed(0)} MiB/s both ways)\n`);
    console.log('side    | rss before | peak rss | peak - before | messages');
    console.log('--------|-----------|-----------|------------|---------');
    console.log(row('client', clientBase, maxRss()));
    console.log(row('server', before, server.maxRss));
    console.log('\nmessages = (peak - before) / message size. The client holds its message, its answer and the encoded frame; the server the frame as it arrives and the answer it encodes.');
    await client.close();
  } finally {
    child.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
