/**
 * The systems `npm run bench` compares, each reduced to a server (a script
 * forked on its own unix socket) and a way to open a `Caller` to it. Every
 * one names the package and version it measured (in its label too).
 *
 * - raw: a hand-written `net` loop with the base framing and no CBOR, the
 *   params' CBOR bytes encoded once and echoed as bytes: the Node limit.
 * - rawcodec: the same loop, encoding and decoding with ipcbor's codec on
 *   both ends: the Node limit plus the CBOR work ipcbor cannot avoid.
 * - rawcborx: the same with cbor-x in pure JS (bench/codecs.ts), the
 *   fastest JS CBOR library: what that CBOR work costs done by it.
 * - rawcborg (opt-in): the same with plain cborg.
 * - extended, base: ipcbor's `connect()` (negotiated extended protocol, or
 *   the base framing) against one `serve()`.
 * - relay, bridge: ipcbor's extended protocol through a relay process in
 *   front of that same server (`createRelay`): over TCP, or over WebSocket
 *   through the bridge. Judged against direct ipcbor extended.
 * - jsonrpc, grpc, zeromq, nodeipc: the peers (bench/peers/).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { connect as connectWebSocket } from '../src/browser/index.js';
import { cbor, connect, type Client } from '../src/index.js';
import { CBORG_VERSION, CBORX_OPTIONS, CBORX_PACKAGE, CODECS, cborxVersion, type CodecId } from './codecs.js';
import type { ServerProcess } from './processes.js';
import { RawClient } from './raw-client.js';
import { PEERS, type PeerId } from './peers/index.js';
import { peerEnginesFloor, peerVersion } from './peers/load.js';
import type { Caller, Workload, WorkloadId } from './workloads.js';

export const SYSTEM_IDS = ['raw', 'rawcodec', 'rawcborx', 'rawcborg', 'extended', 'base', 'relay', 'bridge', 'jsonrpc', 'grpc', 'zeromq', 'nodeipc'] as const;
export type SystemId = (typeof SYSTEM_IDS)[number];
/** What runs when no selection is given (rawcborg is history: the codec ipcbor used before its own). */
export const DEFAULT_SYSTEMS: readonly SystemId[] = ['raw', 'rawcodec', 'rawcborx', 'extended', 'base', 'relay', 'bridge', 'jsonrpc', 'grpc', 'zeromq', 'nodeipc'];

export interface ServerSpec {
  /** One server process per key; systems with the same key share it. */
  key: string;
  script: string;
  args: string[];
  /** The server this one stands in front of (a relay): started first, its address appended to `args`. */
  fronts?: ServerSpec;
}

/** What a client needs of a server to open a connection to it (all a cell's client process is sent: see cell-client.ts). */
export type ServerAddress = Pick<ServerProcess, 'address' | 'socketPath'>;

export interface System {
  id: SystemId;
  label: string;
  kind: 'baseline' | 'ipcbor' | 'peer';
  /** The package measured and its version (undefined: not installed). */
  pkg: string;
  version?: string;
  /** How the system carries the workloads, where it differs from ipcbor. */
  note?: string;
  /** What stands between the client and the server (ipcbor through a relay); such a system is judged against direct ipcbor extended. */
  via?: string;
  /** The workloads it runs (default all), and why it is not run on the others. */
  only?: { workloads: readonly WorkloadId[]; why: string };
  /** Lowest acceptable figure over ipcbor extended's in the same run, by workload. */
  targets?: Partial<Record<WorkloadId, number>>;
  server: ServerSpec;
  open(server: ServerAddress, w: Workload): Promise<Caller>;
  /** Whether an answer is the echo of the workload's params. */
  check(answer: unknown, w: Workload): boolean;
  /** Its package is installed with bench/peers (not always there): its absence does not fail the run. */
  fromPeers?: boolean;
  /** Why the system cannot run here, or undefined (a peer is loaded to find out). */
  unavailable(): Promise<string | undefined>;
  /** Why it cannot run one workload here (e.g. hold W6's 10,000 connections in one process), known before trying. */
  cannot?(w: Workload): string | undefined;
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const METHOD = Buffer.from('echo');
const available = async (): Promise<undefined> => undefined;
/** ipcbor's version (this checkout's package.json). */
const IPCBOR_VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

/** Structural equality of decoded values (bytes by content). */
export function same(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const rawServer = (mode?: CodecId): ServerSpec => ({ key: mode ? `raw-${mode}` : 'raw', script: here('./raw-server.js'), args: mode ? [mode] : [] });
const ipcborServer: ServerSpec = { key: 'ipcbor', script: here('./server.js'), args: [] };
const decoded = (answer: unknown, w: Workload) => same(answer, w.params);

/** A client of the ipcbor bench server that must have negotiated `protocol`. */
async function ipcborCaller(address: string, protocol: 'extended' | 'base', w: Workload): Promise<Caller> {
  return calling(await connect(address, { protocol: protocol === 'extended' ? 'auto' : 'base' }), protocol, w);
}

/** A client (Node's or the browser's) that must have negotiated `protocol`, making the workload's call. */
async function calling(c: Pick<Client, 'protocol' | 'call' | 'close'>, protocol: 'extended' | 'base', w: Workload): Promise<Caller> {
  if (c.protocol !== protocol) {
    await c.close();
    throw new Error(`asked for ${protocol}, got a ${c.protocol} connection`);
  }
  return { call: () => c.call('echo', w.params), close: () => c.close() };
}

function ipcbor(id: 'extended' | 'base'): System {
  return {
    id,
    label: `ipcbor ${IPCBOR_VERSION} ${id}`,
    kind: 'ipcbor',
    pkg: 'ipcbor',
    version: IPCBOR_VERSION,
    server: ipcborServer,
    unavailable: available,
    check: decoded,
    open: (server, w) => ipcborCaller(server.address, id, w),
  };
}

/**
 * ipcbor extended through a relay process in front of the ipcbor server
 * (bench/relay-server.ts), listening on `listen`; measured on the
 * small-call workloads only, against direct ipcbor extended.
 */
function viaRelay(id: 'relay' | 'bridge', listen: 'tcp' | 'ws', via: string, note: string, target: number, dial: (address: string) => Promise<Pick<Client, 'protocol' | 'call' | 'close'>>): System {
  return {
    id,
    label: `ipcbor ${IPCBOR_VERSION} via ${via}`,
    kind: 'ipcbor',
    pkg: 'ipcbor',
    version: IPCBOR_VERSION,
    via,
    note: `${note}; pinned, the relay runs with the servers (CPU 1: it shares the service side's core with the server; BENCH_RELAY_CPU moves it)`,
    only: { workloads: ['W1', 'W2', 'W4'], why: 'measured on the small-call workloads W1, W2 and W4 only' },
    targets: { W2: target, W4: target },
    server: { key: `relay-${listen}`, script: here('./relay-server.js'), args: [listen], fronts: ipcborServer },
    unavailable: available,
    check: decoded,
    open: async (server, w) => calling(await dial(server.address), 'extended', w),
  };
}

function peer(id: PeerId, label: string, note: string): System {
  const mod = PEERS[id];
  const version = peerVersion(mod.PACKAGE);
  const floor = peerEnginesFloor(mod.PACKAGE);
  const outside = floor === undefined ? '' : `; its engines field asks for Node >= ${floor}, this run is on ${process.version} (it loaded, and every cell checks its echo)`;
  return {
    id,
    label: `${label} ${version ?? ''}`.trim(),
    kind: 'peer',
    pkg: mod.PACKAGE,
    ...(version ? { version } : {}),
    note: note + outside,
    server: { key: id, script: here('./peer-server.js'), args: [id] },
    check: decoded,
    open: (server, w) => mod.connect(server.socketPath, w),
    ...('cannot' in mod ? { cannot: mod.cannot } : {}),
    async unavailable() {
      if (!version) return `${mod.PACKAGE} is not installed (npm run bench:peers)`;
      try {
        await mod.load();
        return undefined;
      } catch (err) {
        const why = `${mod.PACKAGE} ${version} does not load on node ${process.version}: ${(err as Error).message.split('\n')[0]}`;
        return floor === undefined ? why : `${why} (its engines field asks for Node >= ${floor})`;
      }
    },
  };
}

/**
 * The raw loop (bench/raw-client.ts, raw-server.ts) with a codec of
 * bench/codecs.ts on both ends: the client encodes the params and decodes
 * the answer on every call, the server decodes and encodes again.
 */
function rawWith(id: SystemId, codec: CodecId, what: { label: string; pkg: string; version: string | undefined; note?: string; fromPeers?: boolean }): System {
  return {
    id,
    label: `raw loop + ${what.label}${what.version ? ` ${what.version}` : ''}`,
    kind: 'baseline',
    pkg: what.pkg,
    ...(what.version ? { version: what.version } : {}),
    ...(what.note ? { note: what.note } : {}),
    ...(what.fromPeers ? { fromPeers: true } : {}),
    server: rawServer(codec),
    unavailable: async () => {
      if (what.version === undefined) return `${what.pkg} is not installed (npm run bench:peers)`;
      try {
        CODECS[codec]();
        return undefined;
      } catch (err) {
        return `${what.pkg} does not load: ${(err as Error).message.split('\n')[0]}`;
      }
    },
    check: decoded,
    async open(server, w) {
      const c = await RawClient.connect(server.socketPath);
      const { encode, decode } = CODECS[codec]();
      return { call: async () => decode(await c.call(METHOD, encode(w.params))), close: () => c.close() };
    },
  };
}

export const SYSTEMS: Record<SystemId, System> = {
  raw: {
    id: 'raw',
    label: `raw net loop (no CBOR, node:net ${process.version})`,
    kind: 'baseline',
    pkg: 'node:net',
    version: process.version,
    server: rawServer(),
    unavailable: available,
    // The same bytes ipcbor puts on the wire as params, encoded once; the answer is those bytes.
    check: (answer, w) => same(answer, cbor.encode(w.params)),
    async open(server, w) {
      const c = await RawClient.connect(server.socketPath);
      const payload = cbor.encode(w.params);
      return { call: () => c.call(METHOD, payload), close: () => c.close() };
    },
  },
  rawcodec: rawWith('rawcodec', 'codec', { label: 'ipcbor codec', pkg: 'ipcbor', version: IPCBOR_VERSION }),
  rawcborx: rawWith('rawcborx', 'cborx', {
    label: 'cbor-x',
    pkg: CBORX_PACKAGE,
    version: cborxVersion(),
    fromPeers: true,
    note: `cbor-x in pure JS: its native part (cbor-extract) is not installed, and CBOR_NATIVE_ACCELERATION_DISABLED=true is set in every process that loads it, before it loads; ${CBORX_OPTIONS}`,
  }),
  rawcborg: rawWith('rawcborg', 'cborg', { label: 'cborg', pkg: 'cborg', version: CBORG_VERSION }),
  extended: ipcbor('extended'),
  base: ipcbor('base'),
  relay: viaRelay(
    'relay',
    'tcp',
    'TCP relay',
    'connect() over TCP loopback to a relay process (createRelay, as a relay daemon runs), which has its own unix-socket connection to the ipcbor extended server for each client',
    0.7,
    (address) => connect(address),
  ),
  bridge: viaRelay(
    'bridge',
    'ws',
    'WebSocket bridge',
    "the browser client (ipcbor/browser connect(), given the ws package's WebSocket) to a relay process's WebSocket bridge (createRelay on ws:127.0.0.1, allowNoOrigin: a program sends no Origin), " +
      'which has its own unix-socket connection to the ipcbor extended server for each client; one binary message per frame',
    0.5,
    (address) => connectWebSocket(address, { WebSocket }),
  ),
  jsonrpc: peer('jsonrpc', 'vscode-jsonrpc', 'JSON-RPC 2.0, Content-Length framing, JSON; W3 as base64 text'),
  grpc: peer('grpc', '@grpc/grpc-js', 'unary calls over HTTP/2; JSON messages, W3 as raw bytes'),
  zeromq: peer('zeromq', 'zeromq', 'DEALER/ROUTER over ipc://; JSON messages, W3 as a raw bytes frame'),
  nodeipc: peer('nodeipc', 'node-ipc', "event messages (its default 'fast' parser: JSON with \\f delimiters), answers in order; W3 as base64 text"),
};
