/**
 * The ipcbor bench server, in its own process so that client and server
 * each get a core. One `echo` method: the result is the params, so each
 * call pays a CBOR decode and encode on this side too. It answers both the
 * extended protocol (clients with protocol 'auto') and the base framing.
 */
import { serve } from '../src/index.js';
import { runChild } from './child.js';

runChild(async (socketPath) => {
  const server = await serve({ echo: (params: unknown) => params }, `unix:${socketPath}`);
  return { address: server.addresses[0]!, stop: () => server.close() };
});
