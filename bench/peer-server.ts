/**
 * A peer's bench server (bench/peers/<name>.js), in its own process like
 * the others: `peer-server.js SOCKET NAME`.
 */
import { runChild } from './child.js';
import { PEERS } from './peers/index.js';

const name = process.argv[3] ?? '';
const peer = PEERS[name as keyof typeof PEERS];
if (!peer) {
  console.error(`peer-server: unknown peer ${name}`);
  process.exit(2);
}
runChild((socketPath) => peer.serve(socketPath));
