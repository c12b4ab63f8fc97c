/** Services for service-name.types.ts, which imports them as types only. */
import { defineService, method, s, type CallContext } from '../../src/index.js';

export const clock = defineService({
  name: 'clock',
  version: '1',
  methods: { now: method({ handler: () => 0 }) },
  events: { tick: s.object({ at: s.int() }) },
});

export const admin = defineService({
  name: 'admin',
  version: '1',
  methods: { reload: method({ params: s.object({ force: s.boolean() }), handler: ({ force }) => force }) },
});

/** A name that is only known at run time: any name is accepted. */
export const dynamic = defineService({ name: String(Date.now()) as string, version: '1', methods: { ping: method({ handler: () => 'pong' }) } });

/** The lazy server's App in lazy-app.types.ts and typed-edges.test.ts. */
export interface Sim {
  speed: number;
}

/** A service whose handlers declare the lazy server's App. */
export const simAdmin = defineService({
  name: 'sim',
  version: '1',
  methods: {
    set: method({
      params: s.object({ speed: s.number() }),
      handler: ({ speed }, ctx: CallContext<Sim>) => {
        ctx.app.speed = speed;
        return { ...ctx.app };
      },
    }),
    status: method({ handler: (_p: void, ctx: CallContext<Sim>) => ctx.app.speed }),
    plain: method({ handler: () => 'any app will do' }),
  },
});
