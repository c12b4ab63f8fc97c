/**
 * The lazy server in an application with its own main loop (nim-ffi's
 * `ipc-server`, which was made for an admin changing run-time settings).
 *
 * A simulation steps every 100 ms. An admin changes its settings while it
 * runs; the changes are applied only between two steps, when the loop
 * calls `handleNewMessages(simulation)`, never in the middle of one:
 *
 *     node dist/examples/lazy/simulation.js --name sim &
 *     ipcbor call sim set '{"speed": 3}'
 *     ipcbor call sim status
 *
 * `--ticks N` stops after N steps (for tests); SIGINT/SIGTERM stop it too.
 */
import { parseArgs } from 'node:util';
import { addressesFromArgs, defineService, method, s, serveLazy, type CallContext } from '../../src/index.js';

/** The application's own state: the context every admin call gets. */
interface Simulation {
  tick: number;
  position: number;
  speed: number;
  paused: boolean;
}

/** The context the admin's handlers get: `ctx.app` is the simulation (see serveLazy<Simulation> below). */
type Ctx = CallContext<Simulation>;

export const admin = defineService({
  name: 'sim',
  version: '1.0.0',
  description: 'run-time settings of the simulation, applied between steps',
  methods: {
    status: method({ handler: (_p: void, ctx: Ctx) => ({ ...ctx.app }) }),
    set: method({
      params: s.object({ speed: s.optional(s.number()), paused: s.optional(s.boolean()) }),
      handler: ({ speed, paused }, ctx: Ctx) => {
        const state = ctx.app;
        if (speed !== undefined) state.speed = speed;
        if (paused !== undefined) state.paused = paused;
        return { ...state };
      },
    }),
  },
});

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { ticks: { type: 'string' }, name: { type: 'string' } }, allowPositionals: true, strict: false });
  const { addresses } = addressesFromArgs([...(values.name ? ['--name', String(values.name)] : []), ...positionals]);
  const server = await serveLazy<Simulation>(admin, addresses.length > 0 ? addresses : ['sim']);
  const state: Simulation = { tick: 0, position: 0, speed: 1, paused: false };
  const limit = values.ticks === undefined ? Infinity : Number(values.ticks);
  let timer: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const a of server.addresses) console.log(`listening ${a}`);

  timer = setInterval(() => {
    // One step of the application's own work...
    if (!state.paused) state.position += state.speed;
    state.tick++;
    // ...then, between steps, whatever the admin asked for.
    const handled = server.handleNewMessages(state);
    console.log(`tick ${state.tick} position ${state.position} speed ${state.speed}${handled ? ` (${handled} admin call${handled > 1 ? 's' : ''})` : ''}`);
    if (state.tick >= limit) stop();
  }, 100);
}

main().catch((err: Error) => {
  console.error(`simulation: ${err.message}`);
  process.exit(1);
});
