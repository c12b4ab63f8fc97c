/**
 * TLS end to end over real sockets, with throwaway certificates: both
 * framings over TLS, mutual TLS accepted and refused (a clear connect()
 * error in every protocol mode), ALPN and version checks by the server, the
 * client's verification of the server (names, IP addresses, CAs, expiry),
 * the peer identity handlers see, the handshake timeout.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createConnection } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { connect, createLoop, serve, type ConnectionInfo, type PeerIdentity, type Server, type ServeOptions } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeRequest } from '../../src/core/frame/encoder.js';
import { ALPN_PROTOCOL, splitAltNames } from '../../src/node/tls.js';
import { rejectsWith } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';
import { certs, cutByServer, openssl, type Certs } from '../tls-helpers.js';

let c: Certs;
before(() => {
  if (!openssl.skip) c = certs();
});

/** What the last `whoami` call saw. */
let seen: ConnectionInfo | undefined;
const handlers = {
  echo: (p: unknown) => p,
  whoami: (_p: unknown, ctx: { connection: ConnectionInfo }) => {
    seen = ctx.connection;
    return { transport: ctx.connection.transport, protocol: ctx.connection.protocol, peer: ctx.connection.peer ?? null };
  },
};

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function tlsServer(tls: Partial<NonNullable<ServeOptions['tls']>> = {}, more: ServeOptions = {}): Promise<{ server: Server; address: string; port: number }> {
  const server = await serve(handlers, 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key, ...tls }, ...more });
  servers.push(server);
  const address = server.addresses[0]!;
  return { server, address, port: Number(address.slice(address.lastIndexOf(':') + 1)) };
}

/** A base-framing request, as bytes. */
function baseRequest(method: string, params: unknown = {}): Buffer {
  const [head, body] = encodeRequest(method, cbor.encode(params));
  return Buffer.concat([head, body]);
}

/** A raw TLS connection: whether its handshake completed, what it received, and how it ended. */
async function rawTls(port: number, options: ConnectionOptions, send?: Buffer): Promise<{ secure: boolean; protocol: string | null; error: NodeJS.ErrnoException | undefined; received: Buffer }> {
  const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ca: c.ca, ...options });
  let secure = false;
  let protocol: string | null = null;
  let error: NodeJS.ErrnoException | undefined;
  const chunks: Buffer[] = [];
  socket.on('secureConnect', () => {
    secure = true;
    protocol = socket.getProtocol();
    if (send) socket.write(send);
  });
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    // One base-framing answer is all these tests wait for.
    const all = Buffer.concat(chunks);
    if (all.length >= 8 && all.length >= 8 + all.readUInt32BE(4)) socket.end();
  });
  socket.on('error', (e) => (error = e));
  const guard = setTimeout(() => socket.destroy(new Error('raw TLS connection still open after 10 s')), 10_000);
  await new Promise((resolve) => socket.once('close', resolve));
  clearTimeout(guard);
  return { secure, protocol, error, received: Buffer.concat(chunks) };
}

describe('TLS', { skip: openssl.skip }, () => {
  it('carries the extended protocol, with the server verified by its IP address SAN', async () => {
    const { address } = await tlsServer();
    assert.match(address, /^tls:127\.0\.0\.1:\d+$/);
    await using client = await connect(address, { tls: { ca: c.ca } });
    assert.equal(client.protocol, 'extended');
    assert.deepEqual(await client.call('echo', { a: [1, 2, 'x'] }), { a: [1, 2, 'x'] });
    assert.deepEqual(await client.call('whoami'), { transport: 'tls', protocol: 'extended', peer: null });
    // The client sees the server's verified certificate.
    const peer = client.peer!;
    assert.ok(Object.isFrozen(peer));
    assert.equal(peer.fingerprint256, new X509Certificate(c.server.cert).fingerprint256);
    assert.deepEqual(peer.subjectAltNames, ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']);
  });

  it('carries the base framing (protocol: base), many calls in order', async () => {
    const { address } = await tlsServer();
    await using client = await connect(address, { protocol: 'base', tls: { ca: c.ca } });
    assert.equal(client.protocol, 'base');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('echo', { i })));
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => ({ i })));
    assert.deepEqual(await client.call('whoami'), { transport: 'tls', protocol: 'base', peer: null });
  });

  it('carries large payloads both ways', async () => {
    const { address } = await tlsServer();
    await using client = await connect(address, { tls: { ca: c.ca } });
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
    const back = (await client.call('echo', { big })) as { big: Uint8Array };
    assert.equal(Buffer.compare(Buffer.from(back.big), Buffer.from(big)), 0);
  });

  it('works with a CA chain given as an array, and with the server reached by name', async () => {
    const { port } = await tlsServer();
    // localhost may resolve to ::1 first: the server listens on 127.0.0.1, so name it through servername.
    await using client = await connect(`tls:127.0.0.1:${port}`, { tls: { ca: [c.otherCa, c.ca], servername: 'localhost' } });
    assert.equal(client.protocol, 'extended');
  });
});

describe('TLS: the client verifies the server', { skip: openssl.skip }, () => {
  it('refuses a server whose certificate names another host', async () => {
    const { address } = await tlsServer({ cert: c.wrongName.cert, key: c.wrongName.key });
    for (const protocol of ['auto', 'base'] as const) {
      const err = await rejectsWith(connect(address, { protocol, tls: { ca: c.ca } }), 'IPCBOR_ERR_CONNECT');
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    }
    // The name it does carry, asked for explicitly, is accepted.
    await using client = await connect(address, { tls: { ca: c.ca, servername: 'other.example' } });
    assert.equal(client.protocol, 'extended');
  });

  it('checks an IP address against the IP SANs: a certificate for DNS:localhost only is refused at 127.0.0.1', async () => {
    const dnsOnly = await tlsServer({ cert: c.dnsOnly.cert, key: c.dnsOnly.key });
    const err = await rejectsWith(connect(dnsOnly.address, { tls: { ca: c.ca } }), 'IPCBOR_ERR_CONNECT');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    await (await connect(dnsOnly.address, { tls: { ca: c.ca, servername: 'localhost' } })).close();

    const ipOnly = await tlsServer({ cert: c.ipOnly.cert, key: c.ipOnly.key });
    await using client = await connect(ipOnly.address, { tls: { ca: c.ca } });
    assert.deepEqual(client.peer!.subjectAltNames, ['IP Address:127.0.0.1']);
    // ...and the same certificate is refused when a name is what we asked for.
    await rejectsWith(connect(ipOnly.address, { tls: { ca: c.ca, servername: 'localhost' } }), 'IPCBOR_ERR_CONNECT');
  });

  it('refuses a server signed by a CA it does not trust, and by default trusts no private CA', async () => {
    const { address } = await tlsServer({ cert: c.otherServer.cert, key: c.otherServer.key });
    const err = await rejectsWith(connect(address, { tls: { ca: c.ca } }), 'IPCBOR_ERR_CONNECT');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const own = await tlsServer();
    await rejectsWith(connect(own.address), 'IPCBOR_ERR_CONNECT');
    await rejectsWith(connect(own.address, { protocol: 'base' }), 'IPCBOR_ERR_CONNECT');
  });

  it('refuses an expired server certificate', async () => {
    const { address } = await tlsServer({ cert: c.expired.cert, key: c.expired.key });
    const err = await rejectsWith(connect(address, { tls: { ca: c.ca } }), 'IPCBOR_ERR_CONNECT');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'CERT_HAS_EXPIRED');
  });

  it('does not speak TLS to a plaintext server, nor plaintext to a TLS one', async () => {
    const plain = await serve(handlers, 'tcp:127.0.0.1:0');
    servers.push(plain);
    const port = plain.addresses[0]!.split(':').pop();
    const plainTls = await rejectsWith(connect(`tls:127.0.0.1:${port}`, { tls: { ca: c.ca }, connectTimeout: 5000 }), 'IPCBOR_ERR_CONNECT');
    assert.match(plainTls.message, new RegExp(`does not speak TLS there .*use tcp:127\\.0\\.0\\.1:${port}$`));
    // A TLS server drops a plaintext hello unanswered. Before the client
    // takes that for a base-framing peer, it asks the port for a TLS handshake on a
    // connection of its own: the answer is TLS, and connect() says so, in
    // every mode that offers the hello.
    const { port: tlsPort } = await tlsServer();
    for (const protocol of ['extended', 'auto'] as const) {
      const err = await rejectsWith(connect(`tcp:127.0.0.1:${tlsPort}`, { protocol, connectTimeout: 5000 }), 'IPCBOR_ERR_CONNECT');
      assert.match(err.message, new RegExp(`this looks like a TLS port .*: use tls:127\\.0\\.0\\.1:${tlsPort}$`), protocol);
    }
    // Told to speak the base framing, the client offers no hello: its first call fails.
    await using base = await connect(`tcp:127.0.0.1:${tlsPort}`, { protocol: 'base', connectTimeout: 5000 });
    await rejectsWith(base.call('echo', {}, { timeout: 5000 }), 'IPCBOR_ERR_CONNECTION_CLOSED');
  });
});

describe('mutual TLS', { skip: openssl.skip }, () => {
  const mutual = () => tlsServer({ clientCa: c.ca });

  it('hands the verified client certificate to handlers, frozen', async () => {
    const { address, server } = await mutual();
    await using client = await connect(address, { tls: { ca: c.ca, cert: c.alice.cert, key: c.alice.key } });
    const answer = (await client.call('whoami')) as { peer: PeerIdentity };
    assert.deepEqual(answer.peer.subject, { CN: 'alice' });
    assert.deepEqual(answer.peer.issuer, { CN: 'ipcbor private CA' });
    assert.equal(answer.peer.fingerprint256, new X509Certificate(c.alice.cert).fingerprint256);
    assert.deepEqual(answer.peer.subjectAltNames, []);
    assert.equal(server.connections, 1);

    const peer = seen!.peer!;
    assert.equal(seen!.transport, 'tls');
    assert.ok(Object.isFrozen(peer) && Object.isFrozen(peer.subject) && Object.isFrozen(peer.issuer) && Object.isFrozen(peer.subjectAltNames));
    assert.throws(() => {
      (peer as { fingerprint256: string }).fingerprint256 = 'forged';
    }, TypeError);
    assert.throws(() => {
      (peer.subject as Record<string, string>).CN = 'root';
    }, TypeError);
  });

  it('works in the base framing too', async () => {
    const { address } = await mutual();
    await using client = await connect(address, { protocol: 'base', tls: { ca: c.ca, cert: c.alice.cert, key: c.alice.key } });
    assert.equal(((await client.call('whoami')) as { peer: PeerIdentity }).peer.subject.CN, 'alice');
  });

  it('refuses a client without a certificate: connect() rejects, in every protocol mode', async () => {
    const { address, server } = await mutual();
    for (const protocol of ['auto', 'extended', 'base'] as const) {
      await rejectsWith(connect(address, { protocol, tls: { ca: c.ca } }), 'IPCBOR_ERR_CONNECT');
    }
    assert.equal(server.connections, 0);
  });

  it('refuses a certificate from another CA, and an expired one: connect() rejects, in every protocol mode', async () => {
    const { address, server } = await mutual();
    for (const who of [c.mallory, c.expiredClient]) {
      for (const protocol of ['auto', 'extended', 'base'] as const) {
        await rejectsWith(connect(address, { protocol, tls: { ca: c.ca, cert: who.cert, key: who.key } }), 'IPCBOR_ERR_CONNECT');
      }
    }
    assert.equal(server.connections, 0);
    seen = undefined;
    // The refusals left the server as it was.
    await using client = await connect(address, { tls: { ca: c.ca, cert: c.alice.cert, key: c.alice.key } });
    await client.call('whoami');
    assert.equal(seen!.peer!.subject.CN, 'alice');
  });
});

describe('TLS: what the server refuses', { skip: openssl.skip }, () => {
  it('a client that offers no ALPN: closed without an answer', async () => {
    const { port, server } = await tlsServer();
    const r = await rawTls(port, {}, baseRequest('echo', { x: 1 }));
    assert.equal(r.received.length, 0);
    assert.equal(server.connections, 0);
    // The same request with ALPN ipcbor/1 is answered.
    const ok = await rawTls(port, { ALPNProtocols: [ALPN_PROTOCOL] }, baseRequest('echo', { x: 1 }));
    assert.equal(ok.received.readInt32BE(0), 0);
    assert.deepEqual(cbor.decode(ok.received.subarray(8)), { x: 1 });
  });

  it('a client that offers another protocol only', async () => {
    const { port } = await tlsServer();
    const r = await rawTls(port, { ALPNProtocols: ['h2'] }, baseRequest('echo'));
    assert.equal(r.received.length, 0);
  });

  it('TLS 1.2, unless the server opts down to it', async () => {
    const strict = await tlsServer();
    const refused = await rawTls(strict.port, { ALPNProtocols: [ALPN_PROTOCOL], maxVersion: 'TLSv1.2' }, baseRequest('echo'));
    assert.equal(refused.secure, false);
    assert.ok(refused.error);
    assert.equal(refused.received.length, 0);

    const lenient = await tlsServer({ minVersion: 'TLSv1.2' });
    const ok = await rawTls(lenient.port, { ALPNProtocols: [ALPN_PROTOCOL], maxVersion: 'TLSv1.2' }, baseRequest('echo', { v: 12 }));
    assert.equal(ok.protocol, 'TLSv1.2');
    assert.deepEqual(cbor.decode(ok.received.subarray(8)), { v: 12 });
    // Its clients still get TLS 1.3.
    const modern = await rawTls(lenient.port, { ALPNProtocols: [ALPN_PROTOCOL] }, baseRequest('echo'));
    assert.equal(modern.protocol, 'TLSv1.3');
  });

  it('a peer that never finishes its handshake, after handshakeTimeout', async () => {
    const { port, server } = await tlsServer({ handshakeTimeout: 200 });
    const started = Date.now();
    const silent = createConnection({ host: '127.0.0.1', port });
    silent.resume();
    // A clean close or a reset: both are the server's cut (see cutByServer).
    await cutByServer(silent);
    const ms = Date.now() - started;
    assert.ok(ms >= 150, `cut after ${ms} ms, before the 200 ms handshake timeout`);
    assert.equal(server.connections, 0);
  });
});

describe('TLS options', { skip: openssl.skip }, () => {
  it('a tls: address needs a certificate; tls options need a tls: address', async () => {
    await rejectsWith(serve(handlers, 'tls:127.0.0.1:0'), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(serve(handlers, 'tcp:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key } }), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(serve(handlers, 'tls:127.0.0.1:0', { tls: { cert: 'not a certificate', key: 'nor a key' } }), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('tcp:127.0.0.1:1', { tls: { ca: c.ca } }), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('tls:127.0.0.1:1', { tls: { ca: c.ca, cert: c.alice.cert } }), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('tls:127.0.0.1:1', { tls: { ca: 'not a CA' } }), 'IPCBOR_ERR_INVALID_ADDRESS');
  });

  it('serves unix and TLS side by side, each connection knowing its transport', async () => {
    const path = tempSocket();
    const server = await serve(handlers, [`unix:${path}`, 'tls:127.0.0.1:0'], { tls: { cert: c.server.cert, key: c.server.key } });
    servers.push(server);
    await using local = await connect(`unix:${path}`);
    await using remote = await connect(server.addresses[1]!, { tls: { ca: c.ca } });
    assert.equal(((await local.call('whoami')) as { transport: string }).transport, 'unix');
    assert.equal(((await remote.call('whoami')) as { transport: string }).transport, 'tls');
  });

  it('the event loop serves unix and TLS one address at a time, with one set of options', async () => {
    const loop = createLoop({ handlers, tls: { cert: c.server.cert, key: c.server.key, clientCa: c.ca } });
    try {
      const [local] = await loop.serve(`unix:${tempSocket()}`);
      const [remote] = await loop.serve('tls:127.0.0.1:0');
      await using a = await connect(local!);
      await using b = await connect(remote!, { tls: { ca: c.ca, cert: c.alice.cert, key: c.alice.key } });
      assert.equal(((await a.call('whoami')) as { transport: string }).transport, 'unix');
      assert.equal(((await b.call('whoami')) as { peer: PeerIdentity }).peer.subject.CN, 'alice');
    } finally {
      await loop.close();
    }
  });

  it('splits Node\'s subjectaltname text, quoted names included', () => {
    assert.deepEqual(splitAltNames('DNS:a.example, IP Address:10.0.0.1'), ['DNS:a.example', 'IP Address:10.0.0.1']);
    assert.deepEqual(splitAltNames('DNS:"a,b.example", URI:spiffe://x/y'), ['DNS:a,b.example', 'URI:spiffe://x/y']);
    assert.deepEqual(splitAltNames(undefined), []);
  });
});
