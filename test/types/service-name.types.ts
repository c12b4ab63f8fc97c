/**
 * Type tests (compiled by tsc, never run): a service's name is part of its
 * type, so a client naming it is checked; type-only imports are enough for
 * client.service<typeof x>() and client.events<typeof x>().
 */
import { expectTypeOf } from 'expect-type';
import { serviceOf, type Client, type ServiceName, type Subscription } from '../../src/index.js';
import type { admin, clock, dynamic } from './service-name-defs.js';

declare const client: Client;

// ---- the name is a literal type ---------------------------------------------
expectTypeOf<ServiceName<typeof clock>>().toEqualTypeOf<'clock'>();
expectTypeOf<ServiceName<typeof admin>>().toEqualTypeOf<'admin'>();
expectTypeOf<ServiceName<typeof dynamic>>().toEqualTypeOf<string>();
expectTypeOf<ServiceName<unknown>>().toEqualTypeOf<string>();
declare const realClock: typeof clock;
expectTypeOf(serviceOf(realClock).name).toEqualTypeOf<'clock'>();

// ---- client.service: by its name, checked ---------------------------------------
const c = client.service<typeof clock>('clock');
expectTypeOf(c.now()).resolves.toBeNumber();
const a = client.service<typeof admin>('admin');
expectTypeOf(a.reload).parameter(0).toEqualTypeOf<{ force: boolean }>();
// @ts-expect-error: a misspelt name does not compile
client.service<typeof clock>('clokc');
// @ts-expect-error: another service's name does not compile
client.service<typeof clock>('admin');
// Bare names (the default service, a base-framing peer): still the service's methods.
expectTypeOf(client.service<typeof clock>().now()).resolves.toBeNumber();
// Mounted under another prefix: said explicitly.
expectTypeOf(client.service<typeof admin>({ prefix: 'admin2' }).reload({ force: true })).resolves.toBeBoolean();
// @ts-expect-error: { prefix } needs a string
client.service<typeof admin>({ prefix: 2 });
// A name only known at run time, or no type at all: any prefix.
void client.service<typeof dynamic>('anything').ping();
void client.service('anything').whatever;

// ---- client.events with a type-only import ---------------------------------------
const ticks = client.events<typeof clock>('clock').subscribe('tick');
expectTypeOf(ticks).toEqualTypeOf<Subscription<{ at: number }>>();
expectTypeOf(client.events<typeof clock>().subscribe('tick')).toEqualTypeOf<Subscription<{ at: number }>>();
client.events<typeof clock>().subscribe('tick', (payload) => expectTypeOf(payload).toEqualTypeOf<{ at: number }>());
// @ts-expect-error: no such event
client.events<typeof clock>().subscribe('tock');
// @ts-expect-error: a misspelt name does not compile
client.events<typeof clock>('clok');
