/**
 * The ipcbor bench server, in its own process so that client and server
 * each get a core. One `echo` method: the result is the params, so each
 * call pays a CBOR decode and encode on this side too. It answers both the
 * extended protocol (clients with protocol 'auto') and the base framing.
 * Room for W6's 10,000 clients and more: serve()'s default maxConnections
 * is 10,000, and a relay's connections count too.
 */
import { serve } from '../src/index.js';
import { runChild } from './child.js';

runChild(async (socketPath) => {
  const server = await serve({ echo: (params: unknown) => params }, `unix:${socketPath}`, { maxConnections: 20_000 });
  return { address: server.addresses[0]!, stop: () => server.close() };
});
