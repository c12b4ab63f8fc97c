/**
 * Run by hidden-classes.test.ts with --allow-natives-syntax: do the objects
 * every call goes through share one hidden class (V8's map) across
 * connections? An object given a property of its own after it was made
 * (an accessor set on each client, say) gets a class of its own, and with
 * many connections every property read on the call path then misses its
 * inline cache. Prints, for each kind of object, whether every instance
 * has the first one's class.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, serve, type CallContext, type Client } from '../../src/index.js';

// A V8 intrinsic, parsed only under --allow-natives-syntax.
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: unknown, b: unknown) => boolean;

const dir = mkdtempSync(join(tmpdir(), 'ipcbor-maps-'));
const contexts: CallContext[] = [];
const server = await serve(
  {
    echo: (params: unknown, ctx: CallContext) => {
      contexts.push(ctx);
      return params;
    },
  },
  [`unix:${join(dir, 's.sock')}`, 'tcp:127.0.0.1:0'],
);
const [unix, tcp] = server.addresses as [string, string];
const clients: Client[] = [];
for (let i = 0; i < 3; i++) clients.push(await connect(unix));
clients.push(await connect(tcp), await connect(tcp, { reconnect: true }), await connect(unix, { timeout: 5000 }));
for (const c of clients) for (let i = 0; i < 3; i++) await c.call('echo', { n: i });

type Inner = { conn: { peer: Record<string, unknown> } };
const parts = (c: Client) => {
  const peer = (c as unknown as Inner).conn.peer;
  return { client: c, connection: (c as unknown as Inner).conn, peer, flow: peer.flow, budget: peer.budget, timers: peer.timers, decoder: peer.decoder, transport: peer.transport };
};
const all = clients.map(parts);
const result: Record<string, boolean> = {};
for (const key of Object.keys(all[0]!) as (keyof ReturnType<typeof parts>)[]) result[key] = all.every((p) => sameMap(p[key], all[0]![key]));
result.context = contexts.every((c) => sameMap(c, contexts[0]));
// What a connection has depends on its transport (a tcp one has a remote address, a unix one none): compared within each.
const infos = (transport: string) => contexts.map((c) => c.connection).filter((i) => i.transport === transport);
result.connectionInfo = ['unix', 'tcp'].every((t) => infos(t).length > 0 && infos(t).every((i) => sameMap(i, infos(t)[0])));
process.stdout.write(JSON.stringify({ calls: contexts.length, same: result }) + '\n');
await Promise.all(clients.map((c) => c.close()));
await server.close();
rmSync(dir, { recursive: true, force: true });
