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
export type ServiceArgs<S> = string extends ServiceName<S>
  ? [
      prefix?:
        | string
        | {
            /** The prefix the service is mounted under on the server. */
            prefix: string;
          },
    ]
  : [
      name?:
        | ServiceName<S>
        | {
            /** The prefix the service is mounted under on the server. */
            prefix: string;
          },
    ];

/** The prefix the arguments of ServiceArgs name (undefined: bare names). */
export function prefixOf(arg: string | { prefix: string } | undefined): string | undefined {
  return typeof arg === 'object' && arg !== null ? arg.prefix : arg;
}

/**
 * The methods of service type S as remote calls: the same shape as calling
 * the service in-process ({@link Callable}), so code written against one
 * works with the other. What `client.service<S>()` returns. S may be a
 * service's type (`typeof timer`), an object of method definitions, or
 * left out (any method name, params and results `unknown`).
 *
 * Each method sends its params (`{}` when left out) and resolves with the
 * result; it rejects with an IpcborError: `IPCBOR_ERR_TIMEOUT`,
 * `IPCBOR_ERR_CANCELLED`, `IPCBOR_ERR_CONNECTION_CLOSED`, or what the
 * server answered (`IPCBOR_ERR_UNKNOWN_METHOD`, `IPCBOR_ERR_INVALID_PARAMS`,
 * `IPCBOR_ERR_HANDLER`, a handler's own code). Property names that objects
 * need (`then`, `toJSON`, `constructor`, …) and symbols are never calls.
 *
 * @example
 * ```ts
 * import type { timer } from './timer-service.js'; // the type only
 * await using client = await connect('timer');
 * const t = client.service<typeof timer>('timer');
 * const { echoed } = await t.echo({ message: 'hi' }, { timeout: 1000 });
 * ```
 */
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
 *
 * @example
 * ```ts
 * const sub = client.events<typeof timer>('timer').subscribe('fired', (payload) => console.log(payload.at));
 * ```
 */
export type RemoteEvents<S> =
  S extends Service<infer _M, infer E, infer _N>
    ? {
        /**
         * Subscribe to the service's event `name` (one it declares): each
         * payload goes to `listener` if given; otherwise the returned
         * {@link Subscription} yields it as you iterate it.
         */
        subscribe<K extends keyof E & string>(name: K, listener?: EventListener<EventsOf<E>[K]>): Subscription<EventsOf<E>[K]>;
      }
    : {
        /**
         * Subscribe to event `name`: each payload goes to `listener` if
         * given; otherwise the returned {@link Subscription} yields it as you
         * iterate it.
         */
        subscribe(name: string, listener?: EventListener): Subscription;
      };

export type SubscribeFn = (name: string, listener?: EventListener) => Subscription;

export function createRemoteEvents<S>(subscribe: SubscribeFn, prefix?: string): RemoteEvents<S> {
  return {
    subscribe: (name: string, listener?: EventListener) => subscribe(prefix ? `${prefix}.${name}` : name, listener),
  } as RemoteEvents<S>;
}
