/**
 * Attacks with connections: many connections each holding an unfinished
 * large frame, idle connections beyond maxConnections, idle connections
 * that never send a thing, and a server that runs out of file descriptors.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { connect, IpcborError, type Client } from '../../src/index.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { assertBounded, KiB, MiB, Probe, baseFrame, settled, sleep, startServer, unbounded, until, type ChildServer } from './harness.js';

const children: ChildServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(children.map((c) => c.kill()));
});

async function setup(options: object, extra: { fdLimit?: number } = {}) {
  const child = await startServer({ address: `unix:${tempSocket()}`, options: unbounded(options), ...extra });
  children.push(child);
  const probe = await Probe.open(child.address);
  return { child, probe };
}

/** A raw socket that remembers whether the server closed it. */
async function raw(address: string): Promise<Socket & { gone: boolean }> {
  const s = (await rawConnect(address)) as Socket & { gone: boolean };
  sockets.push(s);
  s.gone = false;
  s.on('error', () => {});
  s.on('close', () => (s.gone = true));
  s.resume();
  return s;
}

/** The header of a base-framing call to echo announcing `length` bytes of payload. */
function announce(length: number): Buffer {
  const h = baseFrame('echo', new Uint8Array(0));
  h.writeUInt32BE(length, h.length - 4);
  return h;
}

async function served(address: string): Promise<void> {
  const c = await connect(address);
  try {
    assert.equal(await c.call('version'), '1.0.0');
  } finally {
    c.destroy();
  }
}

describe('attack: unfinished large frames on many connections', () => {
  it('100 connections each announce 15 MiB and send 8 MiB: memory bounded by maxServerBytes, others served', async () => {
    const LIMITS = { maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB };
    const { child, probe } = await setup(LIMITS);
    probe.start();
    const header = announce(15 * MiB);
    const body = Buffer.alloc(8 * MiB);
    const conns: Socket[] = [];
    for (let i = 0; i < 100; i++) {
      const s = await raw(child.address);
      s.pause();
      s.write(header);
      s.write(body);
      conns.push(s);
    }
    const volume = conns.length * body.length;
    const taken = () => conns.reduce((sum, s) => sum + header.length + body.length - s.writableLength, 0);
    assert.ok(await settled(taken), 'the server stopped reading the attackers');
    await served(child.address);
    const stats = await probe.stop();
    assert.ok(taken() < volume / 10, `the server took ${taken()} of ${volume} bytes`);
    assertBounded('unfinished large frames', stats, LIMITS.maxServerBytes, volume, child);
    probe.close();
    await child.kill();
  });

  it('with frameTimeout 500, 100 connections that announce 4 MiB and send 4 KiB are closed within 2 s', async () => {
    const { child, probe } = await setup({ maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB, frameTimeout: 500 });
    probe.start();
    const header = announce(4 * MiB);
    const body = Buffer.alloc(4 * KiB);
    const conns: (Socket & { gone: boolean })[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      const s = await raw(child.address);
      s.write(header);
      s.write(body);
      conns.push(s);
    }
    await until(() => conns.every((s) => s.gone), 'every slow connection closed by the server', 2500);
    const ms = performance.now() - t0;
    await served(child.address);
    const stats = await probe.stop();
    console.log(`# attack {"attack":"frameTimeout 500","allClosedMs":${Math.round(ms)},"probeMaxMs":${Math.round(stats.maxLatency)}}`);
    assert.ok(stats.maxLatency < 1000);
    assert.ok(child.alive());
    probe.close();
    await child.kill();
  });
});

describe('attack: idle connections', () => {
  it('beyond maxConnections 50: the extra ones are refused (IPCBOR_ERR_OVERLOADED), and accepted again once some close', async () => {
    const { child, probe } = await setup({ maxConnections: 50 });
    probe.start();
    // The probe is one; 49 more fill the server.
    const held: (Socket & { gone: boolean })[] = [];
    for (let i = 0; i < 49; i++) held.push(await raw(child.address));
    const extra: (Socket & { gone: boolean })[] = [];
    for (let i = 0; i < 30; i++) extra.push(await raw(child.address));
    // A client hears the refusal as the answer to its hello.
    await assert.rejects(connect(child.address), (err: unknown) => err instanceof IpcborError && err.code === 'IPCBOR_ERR_OVERLOADED');
    // A base-framing client hears it as its first call's error.
    const base = await connect(child.address, { protocol: 'base' });
    await assert.rejects(base.call('version'), (err: unknown) => err instanceof IpcborError && err.code === 'IPCBOR_ERR_REMOTE');
    base.destroy();
    // The extra raw connections, which send nothing, are cut after a grace.
    await until(() => extra.every((s) => s.gone), 'the refused connections closed', 4000);
    assert.ok(held.every((s) => !s.gone), 'the connections within the limit stay');
    for (const s of held.slice(0, 20)) s.destroy();
    let client: Client | undefined;
    await until(
      async () => {
        client = await connect(child.address).catch(() => undefined);
        return client !== undefined;
      },
      'a new client accepted',
      3000,
    );
    assert.equal(await client!.call('version'), '1.0.0');
    client!.destroy();
    const stats = await probe.stop();
    console.log(`# attack {"attack":"maxConnections 50","probeCalls":${stats.calls},"probeMaxMs":${Math.round(stats.maxLatency)}}`);
    assert.ok(stats.maxLatency < 1000);
    assert.ok(child.alive());
    probe.close();
    await child.kill();
  });

  it('idleTimeout 300 closes raw connections that never send a thing; a busy client stays', async () => {
    const { child, probe } = await setup({ idleTimeout: 300 });
    probe.start();
    const t0 = performance.now();
    const conns: (Socket & { gone: boolean })[] = [];
    for (let i = 0; i < 50; i++) conns.push(await raw(child.address));
    await until(() => conns.every((s) => s.gone), 'every idle connection closed', 2000);
    const ms = performance.now() - t0;
    const stats = await probe.stop();
    console.log(`# attack {"attack":"idleTimeout 300","allClosedMs":${Math.round(ms)},"probeMaxMs":${Math.round(stats.maxLatency)}}`);
    assert.equal(probe.client.state, 'open', 'the probe, which kept calling, is still connected');
    assert.ok(stats.maxLatency < 1000);
    probe.close();
    await child.kill();
  });
});

describe('attack: file descriptors run out', () => {
  it('with ulimit -n 128, 200 connections: some are dropped, and after they close the listener accepts again', async () => {
    const { child, probe } = await setup({}, { fdLimit: 128 });
    // process.memoryUsage() opens /proc/self/stat: no samples while descriptors run out.
    probe.start({ mem: false });
    const conns: (Socket & { gone: boolean })[] = [];
    for (let i = 0; i < 200; i++) {
      const s = await raw(child.address).catch(() => undefined);
      if (s) conns.push(s);
    }
    // Those the server could not take are closed (or never connected); the others stay.
    await until(() => conns.filter((s) => s.gone).length + (200 - conns.length) > 0, 'some connections refused for want of descriptors', 3000);
    await sleep(200);
    const dropped = conns.filter((s) => s.gone).length + (200 - conns.length);
    const kept = conns.length - conns.filter((s) => s.gone).length;
    // The probe, connected before, was served all along.
    assert.equal(await probe.client.call('version'), '1.0.0');
    for (const s of conns) s.destroy();
    await until(
      async () =>
        served(child.address).then(
          () => true,
          () => false,
        ),
      'a new client served once descriptors are free',
      3000,
    );
    const stats = await probe.stop();
    console.log(`# attack {"attack":"fd limit 128","connections":200,"kept":${kept},"dropped":${dropped},"probeMaxMs":${Math.round(stats.maxLatency)}}`);
    assert.ok(kept > 0 && kept < 128, `the server held ${kept} connections`);
    assert.ok(stats.maxLatency < 1000);
    assert.ok(child.alive());
    probe.close();
    await child.kill();
  });
});
