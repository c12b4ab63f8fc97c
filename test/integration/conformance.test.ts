/**
 * `ipcbor conformance`, run as a child process, against ipcbor's own
 * servers of the conformance service (serve() over unix and TCP, the lazy
 * server, the event loop), and against raw servers that get one case wrong,
 * which must fail that case and only that one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { IpcborError, createLoop, serve, serveLazy, type EventLoop, type LazyServer, type Server } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { createConformanceService } from '../../src/core/conformance/service.js';
import type { CaseResult, Vectors } from '../../src/core/conformance/runner.js';
import { tempSocket } from '../helpers.js';
import { readFileSync } from 'node:fs';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const vectors = JSON.parse(readFileSync(fileURLToPath(new URL('../../../conformance/vectors.json', import.meta.url)), 'utf8')) as Vectors;

interface Report {
  passed: number;
  failed: number;
  results: CaseResult[];
}

function conformance(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'conformance', ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function report(args: string[]): Promise<{ code: number; report: Report }> {
  const r = await conformance([...args, '--json']);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as Report };
  } catch {
    assert.fail(`no JSON report (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

/** Every case passed; a failure shows its difference. */
function allPass(code: number, rep: Report): void {
  const failures = rep.results.filter((r) => !r.ok).map((r) => `${r.name}: step ${r.step} (${r.note}): ${r.difference}`);
  assert.deepEqual(failures, []);
  assert.equal(rep.passed, vectors.cases.length);
  assert.equal(code, 0);
}

describe('ipcbor conformance: ipcbor servers pass every case', () => {
  let unixServer: Server;
  let tcpServer: Server;
  before(async () => {
    unixServer = await serve(createConformanceService(), `unix:${tempSocket()}`);
    tcpServer = await serve(createConformanceService(), 'tcp:127.0.0.1:0');
  });
  after(async () => {
    await unixServer.close();
    await tcpServer.close();
  });

  it('serve() over a unix socket', async () => {
    const { code, report: rep } = await report([unixServer.addresses[0]!]);
    allPass(code, rep);
  });

  it('serve() over TCP, with the text report', async () => {
    const r = await conformance([tcpServer.addresses[0]!]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok {3}base\.echo$/m);
    assert.match(r.stdout, new RegExp(`^${vectors.cases.length} passed, 0 failed$`, 'm'));
  });

  it('the lazy server, its calls run from the application loop', async () => {
    const lazy: LazyServer = await serveLazy(createConformanceService(), `unix:${tempSocket()}`);
    let running = true;
    const pump = (async () => {
      while (running) {
        try {
          await lazy.nextMessage();
        } catch {
          return;
        }
        lazy.handleNewMessages();
      }
    })();
    try {
      const { code, report: rep } = await report([lazy.addresses[0]!]);
      allPass(code, rep);
    } finally {
      running = false;
      await lazy.close();
      await pump;
    }
  });

  it('the event loop, answering with the service as its handlers', async () => {
    const loop: EventLoop = createLoop({ handlers: createConformanceService() });
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    // Only calls of methods the service lacks reach the application: it answers them as unknown.
    const drain = (async () => {
      for await (const ev of loop) if (ev.type === 'message') ev.message.fail(new IpcborError('IPCBOR_ERR_UNKNOWN_METHOD', `unknown method: ${ev.message.method}`));
    })();
    try {
      const { code, report: rep } = await report([address!]);
      allPass(code, rep);
    } finally {
      await loop.close();
      await drain;
    }
  });

  it('--case runs the named cases and the groups ending in "."', async () => {
    const { code, report: rep } = await report([unixServer.addresses[0]!, '--case', 'base.echo', '--case', 'hello.']);
    assert.equal(code, 0);
    assert.deepEqual(
      rep.results.map((r) => r.name),
      vectors.cases.filter((c) => c.name === 'base.echo' || c.name.startsWith('hello.')).map((c) => c.name),
    );
    const unknown = await conformance([unixServer.addresses[0]!, '--case', 'no.such']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no case named no\.such/);
  });
});

/** A raw server: `answer` gets each connection's socket and the bytes that arrived so far. */
async function rawServer(onData: (socket: Socket, buffered: Buffer) => Buffer): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = onData(socket, Buffer.concat([buffered, chunk]));
    });
  });
  const path = tempSocket();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    address: `unix:${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const response = (ret: number, body: Uint8Array) => Buffer.concat([u32(ret >>> 0), u32(body.length), body]);
const extFrame = (head: unknown[], payload?: unknown) => {
  const h = cbor.encode(head);
  const p = payload === undefined ? new Uint8Array(0) : cbor.encode(payload);
  return Buffer.concat([u32(h.length), h, u32(p.length), p]);
};

/** Takes one base-framing request off `buf`: its method and payload, and the rest. */
function takeRequest(buf: Buffer): { method: string; payload: Buffer; rest: Buffer } | undefined {
  if (buf.length < 4) return undefined;
  const m = buf.readUInt32BE(0);
  if (buf.length < 8 + m) return undefined;
  const p = buf.readUInt32BE(4 + m);
  if (buf.length < 8 + m + p) return undefined;
  return { method: buf.subarray(4, 4 + m).toString('utf8'), payload: buf.subarray(8 + m, 8 + m + p), rest: buf.subarray(8 + m + p) };
}

describe('ipcbor conformance: a server that breaks a rule fails that case', () => {
  it('a base-framing server whose unknown-method text is wrong fails base.unknown-method, passes base.echo, exits 1', async () => {
    const server = await rawServer((socket, buf) => {
      for (let r = takeRequest(buf); r; r = takeRequest(buf)) {
        buf = r.rest;
        if (r.method === 'echo') socket.write(response(0, r.payload.length ? r.payload : cbor.encode(null)));
        else socket.write(response(1, Buffer.from(`no such method ${r.method}`)));
      }
      return buf;
    });
    try {
      const { code, report: rep } = await report([server.address, '--case', 'base.echo', '--case', 'base.unknown-method']);
      assert.equal(code, 1);
      assert.deepEqual(
        rep.results.map((r) => [r.name, r.ok]),
        [
          ['base.echo', true],
          ['base.unknown-method', false],
        ],
      );
      assert.match(rep.results[1]!.difference!, /expected text matching .*unknown method: nope.*got "no such method nope"/);
      const text = await conformance([server.address, '--case', 'base.unknown-method']);
      assert.match(text.stdout, /^FAIL base\.unknown-method: step 1 \(response ret != 0/m);
      assert.match(text.stdout, /^0 passed, 1 failed$/m);
    } finally {
      await server.close();
    }
  });

  it('an extended server that answers every broken rule with IPCBOR_ERR_PROTOCOL fails the cases whose code differs', async () => {
    const server = await rawServer((socket, buf) => {
      if (socket.readyState !== 'open' || (socket as Socket & { helloDone?: boolean }).helloDone) {
        if (buf.length > 0 && socket.writable) socket.end(extFrame([5, 0, 'IPCBOR_ERR_PROTOCOL', 'broken']));
        return Buffer.alloc(0);
      }
      const r = takeRequest(buf);
      if (!r) return buf;
      socket.write(response(0, cbor.encode({ version: 1, maxFrameBytes: 1 << 20, window: 64, server: 'raw' })));
      (socket as Socket & { helloDone?: boolean }).helloDone = true;
      if (r.rest.length > 0) socket.end(extFrame([5, 0, 'IPCBOR_ERR_PROTOCOL', 'broken']));
      return Buffer.alloc(0);
    });
    try {
      const { code, report: rep } = await report([server.address, '--case', 'broken.call-id-0', '--case', 'broken.client-result']);
      assert.equal(code, 1);
      const byName = Object.fromEntries(rep.results.map((r) => [r.name, r]));
      assert.equal(byName['broken.client-result']!.ok, true, byName['broken.client-result']!.difference);
      assert.equal(byName['broken.call-id-0']!.ok, false);
      assert.match(byName['broken.call-id-0']!.difference!, /head\[2\]: expected "IPCBOR_ERR_BAD_FRAME", got "IPCBOR_ERR_PROTOCOL"/);
    } finally {
      await server.close();
    }
  });
});
