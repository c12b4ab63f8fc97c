/**
 * The typed remote view of a service: built from the service's *type* only
 * (`import type`), so a client program need not load the server's code.
 *
 *     const timer = client.service<typeof timerService>();
 *     const r = await timer.echo({ req });   // typed params and result
 *
 * At run time it is a Proxy that turns a property name into a call. It never
 * turns `then`, `toJSON`, symbols or inspection hooks into calls, so the
 * object can be awaited, logged and serialized safely.
 */
import type { CallOptions as CallOptionsClient } from '../call-options.js';
import type { EventListener, Subscription } from './subscription.js';
import { RESERVED_NAMES, type AnyMethod, type Callable, type EventsOf, type Service, type ServiceName } from '../service.js';

/**
 * What `client.service<S>(…)` and `client.events<S>(…)` take. Nothing: the
 * bare names (the server's default service; a base-framing peer's methods). A
 * name: the service's methods as `name.method`; where S's name is known
 * (a service from defineService), only that name, so a misspelt one does
 * not compile. `{ prefix }`: a service mounted under a prefix other than
 * its name (`serve([{ service, prefix }])`), which its type cannot know.
 */
export type ServiceArgs<S> = string extends ServiceName<S> ? [prefix?: string | { prefix: string }] : [name?: ServiceName<S> | { prefix: string }];

/** The prefix the arguments of ServiceArgs name (undefined: bare names). */
export function prefixOf(arg: string | { prefix: string } | undefined): string | undefined {
  return typeof arg === 'object' && arg !== null ? arg.prefix : arg;
}

/** The methods of service type S as remote calls: the same shape as calling the service in-process. */
export type Remote<S> = unknown extends S ? AnyRemote : S extends Service<infer M, infer _E, infer _N> ? Callable<M> : S extends Record<string, AnyMethod> ? Callable<S> : never;

/** The remote view of an untyped service: any method, any params, results typed `unknown`. */
export type AnyRemote = { readonly [method: string]: (params?: unknown, options?: CallOptionsClient) => Promise<unknown> };



export type CallFn = (method: string, params: unknown, options?: CallOptionsClient) => Promise<unknown>;

export function createRemote<S>(call: CallFn, prefix?: string): Remote<S> {
  const cache = new Map<string, (params?: unknown, options?: CallOptionsClient) => Promise<unknown>>();
  return new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (typeof prop !== 'string' || RESERVED_NAMES.has(prop)) return undefined;
      let fn = cache.get(prop);
      if (!fn) {
        const method = prefix ? `${prefix}.${prop}` : prop;
        fn = (params?: unknown, options?: CallOptionsClient) => call(method, params === undefined ? {} : params, options);
        cache.set(prop, fn);
      }
      return fn;
    },
    has: () => false,
    ownKeys: () => [],
    set: () => false,
  }) as Remote<S>;
}

/**
 * The events of service type S, typed: `client.events<typeof timer>()
 * .subscribe('on_echo_fired')` yields the declared payload type. Names are
 * the service's own; the prefix (if any) is added on the wire.
 */
export type RemoteEvents<S> =
  S extends Service<infer _M, infer E, infer _N>
    ? { subscribe<K extends keyof E & string>(name: K, listener?: EventListener<EventsOf<E>[K]>): Subscription<EventsOf<E>[K]> }
    : { subscribe(name: string, listener?: EventListener): Subscription };

export type SubscribeFn = (name: string, listener?: EventListener) => Subscription;

export function createRemoteEvents<S>(subscribe: SubscribeFn, prefix?: string): RemoteEvents<S> {
  return {
    subscribe: (name: string, listener?: EventListener) => subscribe(prefix ? `${prefix}.${name}` : name, listener),
  } as RemoteEvents<S>;
}
