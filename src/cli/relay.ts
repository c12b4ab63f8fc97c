/** `ipcbor relay --listen ADDRESS --to SERVICE`: expose a local service on TCP, TLS or WebSocket until interrupted. */
import { createRelay, type RelayOptions } from '../node/relay.js';
import { EXIT, numberOption, option, readOption, tlsFromOptions, UsageError, type Command } from './command.js';

/** A whole number option of at least `min`, or undefined when not given; anything else is a usage error that says what is wrong. */
export function count(values: Record<string, string | boolean | string[] | undefined>, name: string, min: number, what = 'a count'): number | undefined {
  const n = numberOption(values, name, -1, { what, integer: true, min, orEqual: true });
  return n === -1 ? undefined : n;
}

/** The listeners' TLS and plaintext options (--cert, --key, --client-ca, --insecure), as RelayOptions. */
export function listenSecurity(values: Record<string, string | boolean | string[] | undefined>): Pick<RelayOptions, 'tls' | 'insecure'> {
  const cert = readOption(values, 'cert');
  const key = readOption(values, 'key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--cert and --key go together');
  const clientCa = readOption(values, 'client-ca');
  return { ...(cert && key ? { tls: { cert, key, ...(clientCa ? { clientCa } : {}) } } : {}), ...(values.insecure === true ? { insecure: true } : {}) };
}

/** The options `ipcbor monitor` shares with `ipcbor relay`: where, the listeners' TLS, the frame limit, the service's TLS. */
export const relayOptionSpecs: Command['options'] = {
  listen: { type: 'string', multiple: true },
  to: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'client-ca': { type: 'string' },
  insecure: { type: 'boolean' },
  'max-frame-bytes': { type: 'string' },
  'to-ca': { type: 'string' },
  'to-cert': { type: 'string' },
  'to-key': { type: 'string' },
  'to-servername': { type: 'string' },
};

export const relayCommand: Command = {
  name: 'relay',
  summary: 'expose a local service on TCP, TLS or WebSocket (for other machines and web pages)',
  usage: 'ipcbor relay --listen ADDRESS... --to SERVICE [--cert FILE --key FILE] [--origin ORIGIN]... [--token-file FILE] [OPTIONS]',
  help: `Listens on each --listen address and relays every client that connects
there to its own connection to SERVICE (a name, unix:PATH, tcp:HOST:PORT or
tls:HOST:PORT). Whole frames move both ways, unchanged; the service sees
ordinary clients. Runs until Ctrl-C or SIGTERM, then lets calls in flight
finish and exits.

Listen addresses:
  tcp:HOST:PORT, tls:HOST:PORT   ipcbor clients (and base-framing clients in C,
                                 Nim, Python, ...) over TCP or TLS
  ws:HOST:PORT, wss:HOST:PORT    the WebSocket bridge, for browsers: one binary
                                 message per frame; it also serves --pages and
                                 the browser client at /ipcbor/browser/index.js
  unix:PATH or NAME              another unix socket
Port 0 picks a free port; the addresses are printed once listening.

Security (the defaults are safe; each loosening is explicit):
  --cert FILE --key FILE   certificate and key of tls: and wss: listeners
  --client-ca FILE         require client certificates signed by this CA
  --insecure               allow plaintext tcp: or ws: on a network address
                           (anything but loopback); refused otherwise
  --origin ORIGIN          allow web pages from ORIGIN (https://app.example)
                           to use the bridge; repeatable. Allowed without it:
                           loopback origins and the bridge's own address
  --allow-no-origin        accept WebSocket clients that send no Origin
                           (programs rather than browsers)
  --token-file FILE        require the bearer token in FILE (one line) from
                           every WebSocket client, sent as the subprotocol
                           ipcbor.bearer.TOKEN or an Authorization header;
                           also read from the environment variable
                           IPCBOR_RELAY_TOKEN. Never put it in a URL.
  --pages DIR              serve the files of DIR on ws:/wss: listeners

Limits:
  --max-connections N      clients relayed at once (default 10000)
  --max-frame-bytes N      largest payload relayed (default 16 MiB); clients
                           and the service are told it in the hello
  --idle-timeout MS        close a client with nothing in flight and no frame
                           for MS (default 0: never; 300000 with ws:/wss:)

The service over TLS (--to tls:HOST:PORT):
  --to-ca FILE, --to-cert FILE, --to-key FILE, --to-servername NAME`,
  options: {
    ...relayOptionSpecs,
    origin: { type: 'string', multiple: true },
    'allow-no-origin': { type: 'boolean' },
    'token-file': { type: 'string' },
    pages: { type: 'string' },
    'max-connections': { type: 'string' },
    'idle-timeout': { type: 'string' },
  },
  async run(positionals, values, io) {
    const listen = values.listen as string[] | undefined;
    const to = option(values, 'to');
    if (positionals.length > 0 || listen === undefined || listen.length === 0 || to === undefined) return io.usage();
    const security = listenSecurity(values);
    const tokenFile = readOption(values, 'token-file');
    const token = tokenFile !== undefined ? tokenFile.toString('utf8').trim() : process.env.IPCBOR_RELAY_TOKEN;
    // A token asked for and empty is a mistake, not "no token".
    if (token !== undefined && token.trim() === '') {
      throw new UsageError(tokenFile !== undefined ? `--token-file ${option(values, 'token-file')} holds no token` : 'IPCBOR_RELAY_TOKEN is set but empty');
    }
    const origins = values.origin as string[] | undefined;
    const pages = option(values, 'pages');
    const options: RelayOptions = {
      listen,
      to,
      ...security,
      websocket: {
        ...(origins ? { origins } : {}),
        ...(values['allow-no-origin'] === true ? { allowNoOrigin: true } : {}),
        ...(token === undefined ? {} : { token }),
        ...(pages === undefined ? {} : { pages }),
      },
      onError: (err, c) => io.error(`relay: ${c.remote ?? c.transport}: ${err.code}: ${err.message}`),
    };
    const maxConnections = count(values, 'max-connections', 1, 'clients');
    const maxFrameBytes = count(values, 'max-frame-bytes', 1, 'bytes');
    const idleTimeout = count(values, 'idle-timeout', 0, 'milliseconds');
    if (maxConnections !== undefined) options.maxConnections = maxConnections;
    if (maxFrameBytes !== undefined) options.maxFrameBytes = maxFrameBytes;
    if (idleTimeout !== undefined) options.idleTimeout = idleTimeout;
    const toTls = tlsFromOptions(values, 'to-').tls;
    if (toTls) options.toTls = toTls;
    if (io.signal.aborted) return EXIT.interrupted;
    const relay = await createRelay(options);
    for (const a of relay.addresses) io.out(`relaying ${a} -> ${relay.to}`);
    await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
    await relay.close();
    return EXIT.interrupted;
  },
};
