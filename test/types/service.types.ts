/**
 * Type tests: compiled by tsc as part of `npm test` (never run). A line
 * marked @ts-expect-error that stops being an error fails the build, and so
 * does any expectTypeOf that does not hold.
 */
import { expectTypeOf } from 'expect-type';
import { z } from 'zod';
import { defineService, method, s, type Client, type Remote, type Subscription } from '../../src/index.js';
import type { TimerService } from '../../examples/timer/timer.js';

declare const client: Client;
declare const timer: TimerService;

// ---- the remote view, built from the type alone -----------------------------
const remote = client.service<TimerService>();

expectTypeOf(remote.echo).parameter(0).toEqualTypeOf<{ req: { message: string; delayMs: number } }>();
expectTypeOf(remote.echo({ req: { message: 'm', delayMs: 1 } })).resolves.toEqualTypeOf<{ echoed: string; timerName: string }>();
expectTypeOf(remote.version()).resolves.toEqualTypeOf<string>();
expectTypeOf(remote.complex).parameter(0).toEqualTypeOf<{ req: { messages: { message: string; delayMs: number }[]; tags: string[]; note?: string; retries?: number } }>();

// @ts-expect-error: no such method
void remote.eccho({ req: { message: 'm', delayMs: 1 } });
// @ts-expect-error: wrong params (delayMs is a number)
void remote.echo({ req: { message: 'm', delayMs: '1' } });
// @ts-expect-error: missing params
void remote.echo();
// @ts-expect-error: unknown field
void remote.echo({ req: { message: 'm', delayMs: 1, extra: true } });
// @ts-expect-error: a method without params takes none
void remote.version({ x: 1 });

async function misuse() {
  const r = await remote.echo({ req: { message: 'm', delayMs: 1 } });
  // @ts-expect-error: no such field on the result
  void r.echoedd;
  // @ts-expect-error: echoed is a string, not a number
  const n: number = r.echoed;
  void n;
  // @ts-expect-error: the result is a Promise until awaited
  void remote.version().toUpperCase();
}
void misuse;

// ---- in-process and remote have one shape -----------------------------------
expectTypeOf(timer.echo).toEqualTypeOf(remote.echo);
expectTypeOf(timer.version).returns.toEqualTypeOf<Promise<string>>();
expectTypeOf<Remote<TimerService>>().toEqualTypeOf<typeof remote>();
function useEither(t: Remote<TimerService>) {
  return t.echo({ req: { message: 'x', delayMs: 0 } });
}
void useEither(timer);
void useEither(remote);

// ---- handlers get the schema's output; callers send its input ----------------
const svc = defineService({
  name: 'demo',
  version: '1',
  methods: {
    add: method({ params: s.object({ a: s.int(), b: s.int() }), handler: ({ a, b }) => a + b }),
    shout: method({ params: z.object({ text: z.string().transform((t) => t.length) }), handler: ({ text }) => text * 2 }),
    untyped: method({ handler: (p: { anything: unknown }) => p }),
    none: method({ handler: () => 'ok' as const }),
    later: method({ handler: async () => ({ at: 1 }) }),
    // An explicitly `any` service method stays usable, without exploding.
    loose: method({ handler: (p: any) => p as any }),
  },
});
expectTypeOf(svc.add).parameter(0).toEqualTypeOf<{ a: number; b: number }>();
expectTypeOf(svc.add({ a: 1, b: 2 })).resolves.toBeNumber();
expectTypeOf(svc.shout).parameter(0).toEqualTypeOf<{ text: string }>();
expectTypeOf(svc.shout({ text: 'x' })).resolves.toBeNumber();
expectTypeOf(svc.none()).resolves.toEqualTypeOf<'ok'>();
expectTypeOf(svc.later()).resolves.toEqualTypeOf<{ at: number }>();
expectTypeOf(svc.loose({ whatever: 1 })).resolves.toBeAny();
// @ts-expect-error: params checked against the schema's input
void svc.add({ a: 1 });
// @ts-expect-error: the handler's params follow the schema
method({ params: s.object({ a: s.int() }), handler: ({ b }: { b: string }) => b });
// @ts-expect-error: the result schema must match what the handler returns
method({ params: s.object({ a: s.int() }), result: s.string(), handler: ({ a }) => a });

// An untyped (any) remote: any method name and params; results are unknown until narrowed.
const anyRemote = client.service<any>();
expectTypeOf(anyRemote.whatever!({ x: 1 })).resolves.toBeUnknown();
expectTypeOf(client.call('x')).resolves.toBeUnknown();
expectTypeOf(client.call<number>('x')).resolves.toBeNumber();

// ---- typed events -------------------------------------------------------------
const events = client.events<TimerService>();
const fired = events.subscribe('on_echo_fired');
expectTypeOf(fired).toEqualTypeOf<Subscription<{ eventType: 'on_echo_fired'; payload: { message: string; echoCount: number } }>>();
events.subscribe('on_echo_fired', (e) => expectTypeOf(e.payload.echoCount).toBeNumber());
// @ts-expect-error: the timer declares no such event
events.subscribe('on_echo_fire');

// An untyped remote view without a type argument: any method, unknown results.
expectTypeOf(client.service().whatever!({ x: 1 })).resolves.toBeUnknown();
