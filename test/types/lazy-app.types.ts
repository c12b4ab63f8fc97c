/** Type tests (compiled by tsc, never run): the lazy server's ctx.app is the App of serveLazy<App>. */
import { expectTypeOf } from 'expect-type';
import { method, serveLazy, type CallContext } from '../../src/index.js';
import { simAdmin, type Sim } from './service-name-defs.js';
interface Other {
  colour: string;
}

async function typed() {
  // Handlers written inline see ctx.app as the App.
  const inline = await serveLazy<Sim>(
    {
      speed: (_p: unknown, ctx) => {
        expectTypeOf(ctx.app).toEqualTypeOf<Sim>();
        return ctx.app.speed;
      },
    },
    'sim',
  );
  inline.handleNewMessages({ speed: 1 });
  // @ts-expect-error: the context is a Sim
  inline.handleNewMessages({ colour: 'red' });
  // @ts-expect-error: a Sim is needed
  inline.handleNewMessages();

  // A service whose handlers declare their context (ctx: CallContext<Sim>).
  const admin = simAdmin;
  method({ handler: (_p: void, ctx: CallContext<Sim>) => expectTypeOf(ctx.app).toEqualTypeOf<Sim>() });
  // The methods stay callable as usual.
  expectTypeOf(admin.set({ speed: 2 })).resolves.toEqualTypeOf<Sim>();
  const server = await serveLazy<Sim>(admin, 'sim');
  expectTypeOf(server.handleNewMessages).parameters.toEqualTypeOf<[context: Sim]>();
  // @ts-expect-error: its handlers want a Sim, not an Other
  await serveLazy<Other>(admin, 'sim');
  // A list of services is accepted as it is (its contexts are not checked).
  await serveLazy<Sim>([admin], 'sim');
  // With no App, the context is optional and unknown, as before.
  const loose = await serveLazy({ plain: (_p: unknown, ctx) => expectTypeOf(ctx.app).toBeUnknown() }, 'loose');
  loose.handleNewMessages();
  loose.handleNewMessages(42);
}
void typed;
