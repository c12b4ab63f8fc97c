/**
 * TLS for `tls:HOST:PORT` addresses, with node:tls: TLS from the first
 * byte (no plaintext hello before it), TLS 1.3 by default, ALPN `ipcbor/1`
 * required by the server, a short handshake timeout, the server verified
 * by the client (by name, or by IP address when reached by one), and
 * optionally the client verified by the server (mutual TLS). The verified
 * certificate of the peer becomes a frozen PeerIdentity.
 *
 * Once the handshake is done the socket is an ordinary stream: the same
 * SocketTransport carries either framing over it.
 */
import { X509Certificate } from 'node:crypto';
import { createConnection, isIP, Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { checkServerIdentity, connect as tlsConnect, createSecureContext, createServer as createTlsServer, type PeerCertificate, type SecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { OpenTransport } from '../core/transport.js';
import { DEFAULT_MAX_HANDSHAKES, DEFAULT_HANDSHAKE_TIMEOUT } from '../core/constants.js';
import { IpcborError, messageOf } from '../core/errors.js';
import type { PeerIdentity, TransportSink } from '../core/transport.js';
import { formatAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';

/** The ALPN protocol name both sides must agree on. */
export const ALPN_PROTOCOL = 'ipcbor/1';

export { DEFAULT_HANDSHAKE_TIMEOUT } from '../core/constants.js';

/**
 * With TLS 1.3 a server checks the client's certificate after the client's
 * side of the handshake is done, and says so with a session ticket
 * (accepted) or an alert (refused). A client waits this long for either
 * before it goes on without knowing (a server that sends no tickets).
 */
const TICKET_GRACE_MS = 1000;

/** PEM text, or its bytes. */
export type Pem = string | Buffer;

/** `serve(…, { tls })`: what a `tls:` listener needs. */
export interface TlsServerOptions {
  /** The server's certificate (PEM), followed by any intermediate CA certificates its clients need to reach their trusted CA. */
  cert: Pem | Pem[];
  /** The certificate's private key (PEM). */
  key: Pem;
  /** The key's passphrase, if it is encrypted. */
  passphrase?: string;
  /**
   * Mutual TLS: the CA certificate(s) (PEM) that sign the client
   * certificates to accept. With it, a client must present a certificate
   * that chains to one of them, or its connection is refused during the
   * handshake; handlers find that certificate in `ctx.connection.peer`.
   * Without it, clients are not asked for a certificate.
   */
  clientCa?: Pem | Pem[];
  /** Lowest TLS version accepted (default `TLSv1.3`; `TLSv1.2` to admit older clients). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** A peer that has not finished its handshake after this many ms is cut off (default 10,000). */
  handshakeTimeout?: number;
  /**
   * Connections a listener holds while their TLS handshake is under way
   * (default 128). Past it, a new connection closes the one that has been
   * in its handshake longest. They are not counted in `maxConnections`,
   * which counts connections whose handshake is done.
   */
  maxHandshakes?: number;
}

/** `connect('tls:…', { tls })`: how the client checks the server, and its own certificate for mutual TLS. */
export interface TlsClientOptions {
  /**
   * The CA certificate(s) (PEM) to trust for the server's certificate:
   * your private CA. Default: Node's bundled public CAs. There is no
   * option to skip verification.
   */
  ca?: Pem | Pem[];
  /** Mutual TLS: this client's certificate (PEM, then any intermediates). Needs `key`. */
  cert?: Pem | Pem[];
  /** Mutual TLS: the client certificate's private key (PEM). */
  key?: Pem;
  /** The key's passphrase, if it is encrypted. */
  passphrase?: string;
  /**
   * The name the server's certificate must carry, also sent as SNI.
   * Default: the address's host; a host given as an IP address is checked
   * against the certificate's IP addresses (and sends no SNI).
   */
  servername?: string;
  /** Lowest TLS version accepted (default `TLSv1.3`). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

const invalid = (msg: string, cause?: unknown) => new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', msg, cause === undefined ? {} : { cause });

/**
 * Node skips CA text that is not a certificate without a word (and then
 * trusts nothing, or fewer CAs than meant): say so instead.
 */
function checkCertificates(pems: Pem | Pem[] | undefined, what: string): void {
  for (const pem of pems === undefined ? [] : Array.isArray(pems) ? pems : [pems]) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw invalid(`${what} is not a PEM certificate: ${messageOf(err)}`, err);
    }
  }
}

// ---- identity -------------------------------------------------------------------

function names(o: object | undefined): Readonly<Record<string, string | readonly string[]>> {
  const out: Record<string, string | readonly string[]> = {};
  for (const [k, v] of Object.entries(o ?? {})) out[k] = Array.isArray(v) ? Object.freeze(v.map(String)) : String(v);
  return Object.freeze(out);
}

/**
 * Node's `subjectaltname` string (`DNS:a, IP Address:1.2.3.4`), split. A
 * name holding a comma comes quoted as a JSON string (`DNS:"a,b"`).
 */
export function splitAltNames(text: string | undefined): string[] {
  if (!text) return [];
  const out: string[] = [];
  for (const m of text.matchAll(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g)) {
    const part = m[0].trim();
    if (part === '') continue;
    const q = /^([^:"]+):(".*")$/.exec(part);
    if (q) {
      try {
        out.push(`${q[1]}:${JSON.parse(q[2]!) as string}`);
        continue;
      } catch {
        // Not JSON after all: keep it as written.
      }
    }
    out.push(part);
  }
  return out;
}

/** A verified certificate as a frozen PeerIdentity; undefined when the peer presented none. */
export function identityOf(cert: PeerCertificate | Record<string, never> | null | undefined): PeerIdentity | undefined {
  if (!cert || !('fingerprint256' in cert) || !cert.fingerprint256) return undefined;
  return Object.freeze({
    subject: names(cert.subject),
    issuer: names(cert.issuer),
    subjectAltNames: Object.freeze(splitAltNames(cert.subjectaltname)),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validFrom: cert.valid_from,
    validTo: cert.valid_to,
  });
}

// ---- server ---------------------------------------------------------------------

/**
 * A TLS listener for `address`: calls `onSecure` with each socket whose
 * handshake completed, that agreed on ALPN `ipcbor/1`, and (mutual TLS)
 * whose client certificate verified. Everything else is closed here.
 *
 * It is a plain TCP listener that admits each connection to a node:tls
 * server (which does not listen itself) and keeps the connections still in
 * their handshake apart, at most `maxHandshakes` of them: a new one past
 * that closes the oldest. Nobody can hold the handshake slots to keep
 * clients out: a client's handshake takes a round trip or two, and to cut
 * it off an attacker must open `maxHandshakes` connections meanwhile,
 * where refusing new connections instead would let a few idle sockets,
 * reopened as each times out, keep every client out. close() also closes
 * the handshakes under way.
 */
export function createTlsListener(
  address: Address,
  options: TlsServerOptions | undefined,
  onSecure: (socket: TLSSocket, peer: PeerIdentity | undefined) => void,
  /** `ipcbor`: clients must offer ALPN `ipcbor/1`; `http`: a WebSocket bridge's HTTPS (ALPN `http/1.1`, or none). */
  speaks: 'ipcbor' | 'http' = 'ipcbor',
): NetServer {
  const where = formatAddress(address);
  if (!options || options.cert === undefined || options.key === undefined) throw invalid(`${where} needs the tls option with the server's cert and key (PEM)`);
  const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  if (!(handshakeTimeout > 0)) throw invalid(`tls.handshakeTimeout must be a positive number of ms, not ${String(handshakeTimeout)}`);
  const maxHandshakes = options.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
  if (!Number.isInteger(maxHandshakes) || maxHandshakes < 1) throw invalid(`tls.maxHandshakes must be a positive integer, not ${String(maxHandshakes)}`);
  const mutual = options.clientCa !== undefined;
  checkCertificates(options.clientCa, `tls.clientCa of ${where}`);
  let server: TlsServer;
  try {
    server = createTlsServer(
      {
        cert: options.cert,
        key: options.key,
        ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
        ...(mutual ? { ca: options.clientCa, requestCert: true } : { requestCert: false }),
        rejectUnauthorized: true,
        ALPNProtocols: speaks === 'ipcbor' ? [ALPN_PROTOCOL] : ['http/1.1'],
        minVersion: options.minVersion ?? 'TLSv1.3',
        handshakeTimeout,
      },
      (socket) => {
        listener.handshakeDone(socket);
        // Node accepts a client that offers no ALPN at all: this server does not.
        if ((speaks === 'ipcbor' && socket.alpnProtocol !== ALPN_PROTOCOL) || (mutual && !socket.authorized)) {
          socket.on('error', () => {});
          socket.destroy();
          return;
        }
        onSecure(socket, mutual ? identityOf(socket.getPeerCertificate()) : undefined);
      },
    );
  } catch (err) {
    throw invalid(`the tls option of ${where} cannot be used: ${messageOf(err)}`, err);
  }
  // A failed handshake (its timeout too): with this listener present Node
  // leaves closing the socket to us.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  const listener = new TlsListener(server, maxHandshakes);
  return listener;
}

/** A TCP connection, known by its addresses (the TLS socket over it has the same ones). */
const connectionKey = (s: Socket) => (s.remotePort === undefined ? undefined : `${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`);

/** The TCP listener under a TLS one: admission to the handshake (see createTlsListener). */
class TlsListener extends NetServer {
  /** Connections in their handshake, oldest first. */
  private readonly handshaking = new Map<string, Socket>();

  constructor(
    private readonly tls: TlsServer,
    private readonly maxHandshakes: number,
  ) {
    super();
    this.on('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    socket.on('error', () => {});
    const key = connectionKey(socket);
    // No peer address: it was reset before it could be admitted.
    if (key === undefined) {
      socket.destroy();
      return;
    }
    if (this.handshaking.size >= this.maxHandshakes) {
      const [oldestKey, oldest] = this.handshaking.entries().next().value as [string, Socket];
      this.handshaking.delete(oldestKey);
      oldest.destroy();
    }
    this.handshaking.set(key, socket);
    socket.once('close', () => {
      if (this.handshaking.get(key) === socket) this.handshaking.delete(key);
    });
    this.tls.emit('connection', socket);
  }

  /** `socket` finished its handshake: it no longer counts here. */
  handshakeDone(socket: TLSSocket): void {
    const key = connectionKey(socket);
    if (key !== undefined) this.handshaking.delete(key);
  }

  override close(callback?: (err?: Error) => void): this {
    for (const socket of this.handshaking.values()) socket.destroy();
    this.handshaking.clear();
    return super.close(callback);
  }
}

// ---- client ---------------------------------------------------------------------

/** The client's secure context, made once per connect() (and reused by every dial). */
export function clientContext(address: Address, options: TlsClientOptions | undefined): SecureContext {
  const where = formatAddress(address);
  if (options && (options.cert === undefined) !== (options.key === undefined)) throw invalid(`the tls option for ${where}: a client certificate needs both cert and key`);
  checkCertificates(options?.ca, `tls.ca for ${where}`);
  try {
    return createSecureContext({
      ...(options?.ca === undefined ? {} : { ca: options.ca }),
      ...(options?.cert === undefined ? {} : { cert: options.cert, key: options.key }),
      ...(options?.passphrase === undefined ? {} : { passphrase: options.passphrase }),
      minVersion: options?.minVersion ?? 'TLSv1.3',
    });
  } catch (err) {
    throw invalid(`the tls option for ${where} cannot be used: ${messageOf(err)}`, err);
  }
}

/** What the client's own TLS layer says when the server's bytes are not TLS at all: a plaintext port. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_RECORD_LAYER_FAILURE']);
/** Alerts a server sends about a client certificate it was given and does not accept. */
const CERT_REFUSED = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR|ACCESS_DENIED|HANDSHAKE_FAILURE)$/;

/**
 * IPCBOR_ERR_CONNECT for a TLS connection that failed, saying what to do
 * where the cause is plain: the port speaks no TLS, the server wants a
 * client certificate (or not this one), its certificate is not trusted.
 */
function connectError(address: Address, err: unknown, options: TlsClientOptions | undefined): IpcborError {
  const where = formatAddress(address);
  const plain = address.kind === 'unix' ? where : formatAddress({ kind: 'tcp', host: address.host, port: address.port });
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? '';
  const hasCert = options?.cert !== undefined;
  let why: string;
  if (NOT_TLS.has(code)) {
    why = `the server does not speak TLS there (its answer is not TLS: ${code}); if it is a plaintext port, use ${plain}`;
  } else if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || (!hasCert && /ALERT_HANDSHAKE_FAILURE$/.test(code))) {
    why = `the server requires a client certificate (mutual TLS)${hasCert ? '' : ' and this client presented none'}: give it a certificate signed by a CA the server trusts, and its key (the tls option's cert and key) (${code})`;
  } else if (hasCert && CERT_REFUSED.test(code)) {
    why = `the server did not accept this client's certificate: it must be valid and signed by a CA the server trusts (${code})`;
  } else if (code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' || code === 'ERR_SSL_UNSUPPORTED_PROTOCOL') {
    why = `the server and this client have no TLS version in common (ipcbor takes TLS 1.3 unless minVersion says TLSv1.2) (${code})`;
  } else if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
    why = `the server does not speak ipcbor over TLS there: it refused ALPN ${ALPN_PROTOCOL} (${code})`;
  } else if (/^ERR_SSL_.*ALERT/.test(code)) {
    why = `the server refused the TLS connection (${code})`;
  } else if (code.startsWith('ERR_TLS_') || /CERT|SIGNATURE|ISSUER/.test(code)) {
    why = `the server's certificate is not trusted: ${messageOf(err)} (${code})`;
  } else if (code === 'ECONNRESET' && /before secure TLS connection/.test(e.message ?? '')) {
    why = `the server closed the connection before the TLS handshake was done: it may not speak TLS there (a plaintext port: use ${plain}), or it refused this client`;
  } else {
    why = code || messageOf(err);
  }
  return new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${where}: ${why}`, { cause: err });
}

/**
 * The client side of a TLS connection: a TLS alert that closes it before
 * the server's first byte (a refusal the handshake could not report) is a
 * connect failure, so connect() rejects with IPCBOR_ERR_CONNECT rather
 * than falling back to the base framing.
 */
class TlsClientTransport extends SocketTransport {
  constructor(
    socket: TLSSocket,
    private readonly address: Address,
    private readonly options: TlsClientOptions | undefined,
  ) {
    super(socket);
  }

  override attach(sink: TransportSink): void {
    let heard = false;
    super.attach({
      onData: (chunk) => {
        heard = true;
        sink.onData(chunk);
      },
      onDrain: () => sink.onDrain(),
      onClose: (cause) => {
        const code = (cause as NodeJS.ErrnoException | undefined)?.code;
        sink.onClose(!heard && typeof code === 'string' && code.startsWith('ERR_SSL_') ? connectError(this.address, cause, this.options) : cause);
      },
    });
  }
}

/**
 * Dial `address` (kind `tls`) and finish the handshake: the server's
 * certificate verified against `options.ca` and its name (or IP), ALPN
 * offered, and, under TLS 1.3, the server's verdict on our certificate
 * awaited (its first session ticket, or its alert). Rejects with
 * IPCBOR_ERR_CONNECT.
 */
export function dialTls(
  address: Address & { kind: 'tls' },
  context: SecureContext,
  options: TlsClientOptions | undefined,
  signal: AbortSignal,
  keepAlive = 0,
): Promise<{ transport: OpenTransport; peer: PeerIdentity | undefined }> {
  const where = formatAddress(address);
  const name = options?.servername ?? address.host;
  const byIp = isIP(name) !== 0;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: address.host,
      port: address.port,
      secureContext: context,
      // SNI carries names only; an IP is still verified, against the certificate's IP addresses.
      ...(byIp ? {} : { servername: name }),
      checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
      rejectUnauthorized: true,
      ALPNProtocols: [ALPN_PROTOCOL],
    });
    socket.setNoDelay(true);
    let settled = false;
    let grace: ReturnType<typeof setTimeout> | undefined;
    let peer: PeerIdentity | undefined;
    const cleanup = () => {
      settled = true;
      clearTimeout(grace);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('session', onTicket);
      socket.off('secureConnect', onSecure);
    };
    const fail = (err: IpcborError) => {
      if (settled) return;
      cleanup();
      socket.on('error', () => {});
      socket.destroy();
      reject(err);
    };
    function done() {
      if (settled) return;
      cleanup();
      resolve({ transport: new TlsClientTransport(socket, address, options), peer });
    }
    const onError = (err: Error) => fail(connectError(address, err, options));
    const onClose = () =>
      fail(
        new IpcborError(
          'IPCBOR_ERR_CONNECT',
          `could not connect to ${where}: the server closed the connection during the TLS handshake (${options?.cert === undefined ? 'it may require a client certificate, or not speak TLS there' : "it may not accept this client's certificate, or not speak TLS there"})`,
        ),
      );
    const onAbort = () => fail(new IpcborError('IPCBOR_ERR_CANCELLED', `connecting to ${where} was cancelled`, { cause: signal.reason }));
    const onSecure = () => {
      // rejectUnauthorized already failed the handshake of an unverified server; this is belt and braces.
      if (!socket.authorized) {
        fail(connectError(address, socket.authorizationError ?? new Error('the server is not verified'), options));
        return;
      }
      peer = identityOf(socket.getPeerCertificate());
      // TLS runs over TCP: a server that vanished without a FIN is found the same way.
      if (keepAlive > 0) socket.setKeepAlive(true, keepAlive);
      if (socket.getProtocol() !== 'TLSv1.3') {
        done();
        return;
      }
      grace = setTimeout(done, TICKET_GRACE_MS);
      socket.once('session', onTicket);
    };
    // Not from inside the 'session' event: it fires while OpenSSL reads,
    // and bytes written from there (the hello) are lost.
    const onTicket = () => setImmediate(done);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('secureConnect', onSecure);
  });
}

// ---- a TLS port reached without TLS -----------------------------------------------

/** How long a TLS probe waits for the server's answer at most. */
const PROBE_MS = 2000;

/** A TLS record from the server: a handshake (0x16: its ServerHello) or an alert (0x15), record version 3.x. */
function isTlsRecord(b: Uint8Array): boolean {
  return b.length >= 2 && (b[0] === 0x16 || b[0] === 0x15) && b[1] === 0x03;
}

/** The ClientHello node:tls writes for `host` (ALPN ipcbor/1), made without a network: its first write on a stream nobody reads. */
function clientHello(host: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let socket: TLSSocket | undefined;
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        // The hello is one record, in one write or a few in a row.
        if (chunks.length === 0) {
          setImmediate(() => {
            socket?.destroy();
            resolve(Buffer.concat(chunks));
          });
        }
        chunks.push(chunk);
        callback();
      },
    });
    // This socket reaches no server (its stream goes nowhere): nothing is
    // verified because nothing is ever received or sent over it.
    socket = tlsConnect({ socket: stream, rejectUnauthorized: false, ALPNProtocols: [ALPN_PROTOCOL], ...(isIP(host) === 0 ? { servername: host } : {}) });
    socket.on('error', (err) => {
      if (chunks.length === 0) reject(err);
    });
  });
}

/**
 * Is the server at `address` (tcp:) a TLS server? It is asked on a
 * connection of its own: a TLS ClientHello, and the first bytes of its
 * answer looked at (a TLS server answers with a handshake record, or an
 * alert; a plaintext server with anything else, or nothing). Nothing is
 * sent after the hello, and the connection is closed at once. False when
 * it cannot tell (within `signal` and PROBE_MS).
 */
export function looksLikeTlsPort(address: Address & { kind: 'tcp' }, signal: AbortSignal): Promise<boolean> {
  return clientHello(address.host).then(
    (hello) =>
      new Promise<boolean>((resolve) => {
        const socket = createConnection({ host: address.host, port: address.port });
        const finish = (answer: boolean) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', stop);
          socket.destroy();
          resolve(answer);
        };
        const stop = () => finish(false);
        const timer = setTimeout(stop, PROBE_MS);
        signal.addEventListener('abort', stop, { once: true });
        if (signal.aborted) stop();
        socket.on('error', stop);
        socket.on('close', stop);
        socket.once('connect', () => socket.write(hello));
        socket.once('data', (chunk: Buffer) => finish(isTlsRecord(chunk)));
      }),
    () => false,
  );
}
