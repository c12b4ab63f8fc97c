/**
 * Attacks found in a review of the relay and the WebSocket bridge, each on
 * a relay in a child process (relay-child.ts). Both fail on the commit
 * reviewed (59d04c0) and pass once their finding is fixed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { connect, serve, type Server } from '../../src/index.js';
import { tempSocket } from '../helpers.js';
import { held, mb, MiB, settled, sleep, spawnNode, type Mem } from './harness.js';

const RELAY_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'relay-child.js');

const cleanups: (() => unknown)[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const f of cleanups.reverse()) await f();
});

async function relayChild(config: { listen: string[]; to: string; options?: object; adapter?: 'ndjson' }, fdLimit?: number) {
  const control = `unix:${tempSocket()}`;
  const proc = spawnNode(RELAY_SCRIPT, [JSON.stringify({ ...config, control })], { heapMb: 1024, ...(fdLimit === undefined ? {} : { fdLimit }) });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    proc.once('exit', (code) => reject(new Error(`the relay exited (${code}) before it listened`)));
  });
  const info = JSON.parse(line) as { address: string; addresses: string[]; control: string };
  const controlClient = await connect(info.control);
  cleanups.push(async () => {
    controlClient.destroy();
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  return { ...info, mem: () => controlClient.call<Mem>('mem') };
}

let service: Server | undefined;
async function aService(): Promise<string> {
  service ??= await serve({ version: () => 'svc' }, `unix:${tempSocket()}`);
  cleanups.unshift(() => service?.close());
  return service.addresses[0]!;
}

describe('attack review: sockets on the bridge that never upgrade', () => {
  it('cannot keep a client that holds the token out (they are timed out or bounded, as TLS handshakes are)', async () => {
    const TOKEN = 'the-Token_1';
    const relay = await relayChild({ listen: ['ws:127.0.0.1:0'], to: await aService(), options: { websocket: { token: TOKEN } } }, 256);
    const port = Number(relay.address.slice(relay.address.lastIndexOf(':') + 1));
    // An attacker without the token opens 300 sockets and sends the start of a request on each.
    const connected: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const s = createConnection({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n'));
      connected.push(new Promise((r) => (s.once('connect', r), s.once('close', r))));
      sockets.push(s);
    }
    await Promise.all(connected);
    // The client with the token tries for 42 s (headersTimeout is 10 s; Node checks it every 30 s where it does).
    const deadline = Date.now() + 42_000;
    let served = false;
    let last = '';
    while (!served && Date.now() < deadline) {
      served = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['ipcbor', `ipcbor.bearer.${TOKEN}`], { origin: 'http://localhost', handshakeTimeout: 2000 });
        ws.once('open', () => (ws.close(), resolve(true)));
        ws.once('error', (e) => ((last = e.message), resolve(false)));
      });
      if (!served) await sleep(2000);
    }
    // Found: never served (last error: "socket hang up"/ECONNRESET): the bridge's http.Server never
    // listens, so Node never enforces its headersTimeout/requestTimeout; a socket that never finishes a
    // request is held forever, counted by nothing (maxConnections counts upgraded WebSockets only), and
    // 300 of them use up the relay's descriptors: nobody else is accepted, and no service can be dialed.
    assert.ok(served, `a client with the token was not served within 42 s (${last})`);
  });
});

describe('attack review: an adapter that answers for itself', () => {
  it("its replies to a client that reads nothing stay within the relay's budget (the ndjson example)", async () => {
    const relay = await relayChild({ listen: ['tcp:127.0.0.1:0'], to: await aService(), options: { maxConnectionBytes: 4 * MiB, maxServerBytes: 32 * MiB }, adapter: 'ndjson' });
    const baseline = held(await relay.mem());
    const port = Number(relay.address.slice(relay.address.lastIndexOf(':') + 1));
    const s = createConnection({ host: '127.0.0.1', port });
    sockets.push(s);
    s.on('error', () => {});
    await once(s, 'connect');
    s.pause(); // reads nothing
    // Lines that are not JSON: the adapter answers each itself, through `reply` (fewer than 1024 per read).
    const batch = Buffer.from(`${'x'.repeat(99)}\n`.repeat(600));
    let sent = 0;
    const t0 = Date.now();
    while (sent < 96 * MiB && Date.now() - t0 < 30_000) {
      if (!s.write(batch)) await Promise.race([once(s, 'drain'), sleep(300)]);
      sent += batch.length;
    }
    // Until the relay's memory stops changing: it took what it will take.
    await settled(async () => Math.round(held(await relay.mem()) / MiB), 500, 8000);
    const grew = held(await relay.mem()) - baseline;
    // Found: the relay reads on and holds every reply (75 MB after 96 MB sent, 200 MB after 256 MB,
    // growing with what is sent): adaptTransport's `reply` writes to the transport directly, outside
    // the peer's flow control and byte budget, so nothing stops reading when the replies back up.
    assert.ok(grew < 4 * MiB + 24 * MiB, `the relay holds ${mb(grew)} more after ${mb(sent)} of lines it answered itself`);
  });
});
