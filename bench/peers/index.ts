/** The peers, by system id. */
import * as grpc from './grpc.js';
import * as jsonrpc from './jsonrpc.js';
import * as nodeipc from './nodeipc.js';
import * as zeromq from './zeromq.js';

export const PEERS = { jsonrpc, grpc, zeromq, nodeipc } as const;
export type PeerId = keyof typeof PEERS;
