/**
 * Services: define once, call in-process (native, no serialization) or
 * serve on a socket (CBOR at the edge), and call remotely with the same
 * types.
 *
 *     const timer = defineService({
 *       name: 'timer', version: '0.1.0',
 *       methods: {
 *         echo: method({ params: EchoParams, handler: ({ req }) => ({ echoed: req.message }) }),
 *       },
 *     });
 *     await timer.echo({ req });          // in-process: the handler's own object
 *     await serve(timer, 'unix:/run/t');  // on a socket
 *
 * The object returned by defineService has the methods as its only string
 * keys, so a method may be called `version` or `name`; the metadata sits
 * behind a symbol (see `serviceOf`).
 */
import type { StandardJSONSchemaV1, StandardSchemaV1 } from '@standard-schema/spec';
import { IpcborError, guarded } from './errors.js';
import { checkTimeout, type CallOptions as CallOptionsClient } from './call-options.js';
import { DESCRIBE_METHOD } from './protocol/heads.js';
import { takesParams, type CallContext, type Dispatcher, type MethodEntry } from './dispatcher.js';
import type { ConnectionInfo } from './transport.js';
import { isAsyncIterable } from './peer/streams.js';
import { validateThen } from './validate.js';

/**
 * One method of a service: its handler and, optionally, schemas for its
 * params and result. Usually written with {@link method}, which infers the
 * handler's types from the params schema.
 *
 * `In` is what callers pass, `Params` what the handler gets (a schema's
 * output, after its transforms and defaults), `Result` what the handler
 * returns (a value, a Promise, or an async iterable for a result stream),
 * `App` the type of {@link CallContext.app}.
 */
export interface MethodDef<In = unknown, Params = In, Result = unknown, App = unknown> {
  /** Validates params arriving over a socket; its output type is what the handler gets. */
  readonly params?: StandardSchemaV1<In, Params>;
  /** Describes the result (for introspection); results are not validated. */
  readonly result?: StandardSchemaV1<unknown, NoInfer<Awaited<Result>>>;
  /** A sentence for humans; `$ipcbor.describe` (and `ipcbor describe`) shows it. */
  readonly description?: string;
  /**
   * Runs the call. It gets the params (validated by `params` when there is
   * a schema; as decoded otherwise) and the call's {@link CallContext}, and
   * returns the result, a Promise of it, or an async iterable (a result
   * stream). What it throws is sent to the caller as the call's error.
   */
  readonly handler: (params: Params, ctx: CallContext<App>) => Result;
}

/** Any method definition (handlers see their params contravariantly, hence `any`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethod = MethodDef<any, any, any, any>;

/**
 * Declare a method with a params schema: the handler's params are typed as
 * the schema's output, and callers' params as its input. Any Standard
 * Schema works ({@link s}, zod, valibot, arktype). Params that do not pass
 * the schema reject the call with `IPCBOR_ERR_INVALID_PARAMS` before the
 * handler runs, in-process and over a socket alike. It returns `def` as it
 * is: `method` only gives the types.
 *
 * @example
 * ```ts
 * const echo = method({
 *   params: s.object({ message: s.string() }),
 *   result: s.object({ echoed: s.string() }),
 *   description: 'Sends the message back',
 *   handler: ({ message }) => ({ echoed: message }),
 * });
 * const svc = defineService({ name: 'echoer', version: '1.0.0', methods: { echo } });
 * ```
 */
export function method<S extends StandardSchemaV1, R, App = unknown>(def: {
  params: S;
  result?: StandardSchemaV1<unknown, NoInfer<Awaited<R>>>;
  description?: string;
  handler: (params: StandardSchemaV1.InferOutput<S>, ctx: CallContext<App>) => R;
}): NoInfer<MethodDef<StandardSchemaV1.InferInput<S>, StandardSchemaV1.InferOutput<S>, R, App>>;
/**
 * Declare a method without a schema: params are typed by the handler's
 * first parameter, and are not checked at run time (a remote caller may
 * send anything). A handler that declares no parameter takes none: a
 * payload sent to it is never decoded.
 *
 * @example
 * ```ts
 * const now = method({ handler: () => Date.now() });
 * const add = method({ handler: ({ a, b }: { a: number; b: number }) => a + b });
 * ```
 */
export function method<P = void, R = unknown, App = unknown>(def: {
  result?: StandardSchemaV1<unknown, NoInfer<Awaited<R>>>;
  description?: string;
  handler: (params: P, ctx: CallContext<App>) => R;
}): NoInfer<MethodDef<P, P, R, App>>;
export function method(def: AnyMethod): AnyMethod {
  return def;
}

export interface ServiceSpec<M extends Record<string, AnyMethod>, E extends Record<string, StandardSchemaV1 | null>> {
  /** Also the prefix the service answers under when several share a socket. */
  name: string;
  /** The service's version, shown by `$ipcbor.describe`. */
  version: string;
  /** A sentence for humans, shown by `$ipcbor.describe`. */
  description?: string;
  /** The methods, by name (each usually made with {@link method}). */
  methods: M;
  /** Events the service emits, with an optional payload schema (for introspection). */
  events?: E;
}

/** How a method is called: params first (optional when the method takes none). */
type ParamsArg<In> = 0 extends 1 & In ? [params?: In] : [In] extends [void] ? [params?: Record<string, never>] : undefined extends In ? [params?: In] : [params: In];

/**
 * The methods of a service as callers see them, in-process and remote
 * alike: each takes its params and call options and returns a Promise of
 * the handler's result. Code written against it works with either.
 */
export type Callable<M extends Record<string, AnyMethod>> = {
  readonly [K in keyof M]: M[K] extends MethodDef<infer In, infer _P, infer R, infer _A> ? (...args: [...ParamsArg<In>, options?: CallOptionsClient]) => Promise<Awaited<R>> : never;
};

/**
 * The payload type of each event declared in a service's `events`: a
 * schema's output type, or `unknown` for an event declared `null` (no
 * schema).
 */
export type EventsOf<E> = { [K in keyof E]: E[K] extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<E[K]> : unknown };

const SERVICE = Symbol.for('ipcbor.service');

/**
 * A service made by defineService. `N` is its name as a type (`'timer'`
 * for `defineService({ name: 'timer', … })`), so that a client naming it
 * (`client.service<typeof timer>('timer')`) is checked.
 */
export type Service<M extends Record<string, AnyMethod> = Record<string, AnyMethod>, E extends Record<string, StandardSchemaV1 | null> = Record<never, never>, N extends string = string> = Callable<M> & {
  /** The service's metadata and event emitter; read it with {@link serviceOf}. */
  readonly [SERVICE]: ServiceInfo<M, E, N>;
};

/** An object that is not a service (a plain object of handlers), for overloads that tell them apart. */
export type NotAService = { readonly [SERVICE]?: never };

/** The name of service type S as a literal type, where its definition is known; `string` otherwise. */
export type ServiceName<S> = S extends {
  /** The metadata of a service made by {@link defineService}. */
  readonly [SERVICE]: {
    /** The service's name, as a literal type. */
    readonly name: infer N extends string;
  };
}
  ? N
  : string;

/** Any service, whatever its methods (what `serve` and the router take). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyService = {
  /** The service's metadata and event emitter; read it with {@link serviceOf}. */
  readonly [SERVICE]: ServiceInfo<any, any>;
};

type Listener = (payload: unknown, name: string) => void;

/** What `on()` returns: call it, or dispose of it (`using`), to stop listening. */
export type Unlisten = (() => void) &
  Disposable & {
    /** Stop listening (the same as calling it). */
    dispose(): void;
  };

/**
 * What ipcbor knows of a service, and its event emitter; reach it with
 * {@link serviceOf}. It holds what {@link defineService} was given.
 *
 * @example
 * ```ts
 * const info = serviceOf(timer);
 * const off = info.on('fired', (payload) => console.log(payload));
 * info.emit('fired', { at: Date.now() }); // local listeners and subscribed clients
 * off();
 * ```
 */
export class ServiceInfo<M extends Record<string, AnyMethod> = Record<string, AnyMethod>, E extends Record<string, StandardSchemaV1 | null> = Record<never, never>, N extends string = string> {
  /** The service's name: also its default prefix on a socket (`name.method`). */
  readonly name: N;
  /** The service's version, as given to {@link defineService}. */
  readonly version: string;
  /** The service's description, if it was given one. */
  readonly description: string | undefined;
  /** The method definitions, by name, as given to {@link defineService}. */
  readonly methods: M;
  /** The declared events, by name, each with its payload schema or `null` (`{}` when none were declared). */
  readonly events: E;
  /** Where emitted events go: in-process listeners, and the servers this service is served by. */
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly sinks = new Set<(name: string, payload: unknown) => void>();

  constructor(spec: ServiceSpec<M, E> & { name: N }) {
    this.name = spec.name;
    this.version = spec.version;
    this.description = spec.description;
    this.methods = spec.methods;
    this.events = (spec.events ?? {}) as E;
  }

  /**
   * Emit an event: in-process listeners get the payload object itself; every
   * server this service is mounted on sends it to its subscribed clients,
   * under `prefix.name` (the default service's also under the bare name).
   * The payload is not validated against the event's schema. A listener that
   * throws does not keep the event from the others: its error is rethrown
   * as an uncaught exception, outside this call.
   */
  emit<K extends keyof E & string>(name: K, payload: EventsOf<E>[K]): void {
    // One throwing listener must not keep the event from the others, nor
    // from remote subscribers; its error surfaces as an uncaught exception.
    for (const l of this.listeners.get(name) ?? []) guarded(() => l(payload, name));
    for (const l of this.listeners.get('*') ?? []) guarded(() => l(payload, name));
    for (const sink of this.sinks) guarded(() => sink(name, payload));
  }

  /**
   * Listen in-process to event `name` (`*`: all of this service's events).
   * The listener gets the payload object itself (nothing is copied or
   * encoded) and the event's name. Returns an {@link Unlisten}: call it, or
   * dispose of it, to stop listening.
   */
  on<K extends (keyof E & string) | '*'>(name: K, listener: (payload: K extends keyof E ? EventsOf<E>[K] : unknown, name: string) => void): Unlisten {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as Listener);
    const off = () => void set.delete(listener as Listener);
    return Object.assign(off, { dispose: off, [Symbol.dispose]: off });
  }

  /** @internal a server forwards this service's events */
  addSink(sink: (name: string, payload: unknown) => void): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }
}

/**
 * Method names a service may not use: they would break `await service`,
 * JSON.stringify, object basics, or the detection that test runners,
 * loggers and frameworks do on objects. The remote proxy never turns these
 * into calls either (remote.ts), so both sides agree.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'then', 'catch', 'finally', 'constructor', '__proto__', 'prototype', 'toJSON', 'toString', 'valueOf', 'hasOwnProperty',
  'inspect', 'asymmetricMatch', '$$typeof', 'nodeType', 'tagName',
]);

const IN_PROCESS: ConnectionInfo = Object.freeze({ id: 0, transport: 'in-process', protocol: 'extended' as const });
const NEVER = new AbortController().signal;
const setTimer = globalThis.setTimeout;
const clearTimer = globalThis.clearTimeout;

/**
 * An in-process call: the handler itself, no serialization. Params are
 * validated as they would be at the socket edge (so transforms and
 * defaults of a schema apply the same way). Timeout and signal settle the
 * call exactly as they do for a remote call, and the handler sees its
 * signal abort; for a stream result they hold until the stream ends.
 */
async function callLocal(name: string, entry: MethodEntry, params: unknown, options?: CallOptionsClient): Promise<unknown> {
  const timeout = checkTimeout(options?.timeout);
  const outer = options?.signal;
  if (timeout === undefined && outer === undefined) {
    return entry.invoke(params, { method: name, signal: NEVER, connection: IN_PROCESS, deadline: undefined, app: undefined });
  }
  if (outer?.aborted) throw new IpcborError('IPCBOR_ERR_CANCELLED', `${name} was cancelled`, { method: name, cause: outer.reason });
  const controller = new AbortController();
  let stopped: IpcborError | undefined;
  let onStop: ((err: IpcborError) => void)[] = [];
  const stop = (err: IpcborError) => {
    if (stopped) return;
    stopped = err;
    controller.abort(err);
    release();
    for (const f of onStop) f(err);
    onStop = [];
  };
  const timer = timeout === undefined ? undefined : setTimer(() => stop(new IpcborError('IPCBOR_ERR_TIMEOUT', `${name} timed out after ${timeout} ms`, { method: name })), timeout);
  const onAbort = () => stop(new IpcborError('IPCBOR_ERR_CANCELLED', `${name} was cancelled`, { method: name, cause: outer!.reason }));
  outer?.addEventListener('abort', onAbort, { once: true });
  function release(): void {
    if (timer !== undefined) clearTimer(timer);
    outer?.removeEventListener('abort', onAbort);
  }
  const whenStopped = () => new Promise<never>((_resolve, reject) => (stopped ? reject(stopped) : onStop.push(reject)));
  const ctx: CallContext = { method: name, signal: controller.signal, connection: IN_PROCESS, deadline: timeout === undefined ? undefined : Date.now() + timeout, app: undefined };
  let value: unknown;
  try {
    value = await Promise.race([entry.invoke(params, ctx), whenStopped()]);
  } catch (err) {
    release();
    throw err;
  }
  if (!isAsyncIterable(value) || value instanceof Uint8Array) {
    release();
    return value;
  }
  // A stream: the deadline and the signal go on until it ends; when either
  // fires, the reader gets the error and the source is closed.
  const it = value[Symbol.asyncIterator]();
  onStop.push(() => void Promise.resolve(it.return?.()).catch(() => undefined));
  const guarded: AsyncIterableIterator<unknown> = {
    next: async () => {
      const r = await Promise.race([it.next(), whenStopped()]);
      if (r.done) release();
      return r;
    },
    return: async () => {
      release();
      onStop = [];
      await it.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return guarded;
    },
  };
  return guarded;
}

/**
 * Define a service: a named, versioned set of methods (and the events it
 * emits). The returned object has the methods as its only string keys,
 * each callable in-process as `await service.name(params, options)` (see
 * {@link Callable}); pass the service to `serve()` to put it on a socket,
 * and use its type for `client.service<typeof service>()` on the client.
 *
 * An in-process call runs the handler itself, with no serialization:
 * params are validated as at the socket edge (rejecting with
 * `IPCBOR_ERR_INVALID_PARAMS`), `options.timeout` rejects with
 * `IPCBOR_ERR_TIMEOUT` and `options.signal` with `IPCBOR_ERR_CANCELLED`
 * (the handler's `ctx.signal` aborts too), and what a handler throws
 * rejects the call as it is. Its {@link CallContext} has connection id 0,
 * transport `'in-process'`, and `app` undefined.
 *
 * @throws TypeError when the service's name is empty, contains `.` or
 * starts with `$`; when a method's name is empty, contains `.`, starts with
 * `$`, or is one a JavaScript object needs (`then`, `constructor`,
 * `toJSON`, `toString`, …); or when a method has no handler.
 *
 * @example
 * ```ts
 * const timer = defineService({
 *   name: 'timer',
 *   version: '1.0.0',
 *   methods: {
 *     echo: method({ params: s.object({ message: s.string() }), handler: ({ message }) => ({ echoed: message }) }),
 *     now: method({ handler: () => Date.now() }),
 *   },
 *   events: { fired: s.object({ at: s.int() }) },
 * });
 * await timer.echo({ message: 'hi' }, { timeout: 1000 }); // in-process
 * const server = await serve(timer, 'timer');             // on a socket
 * ```
 */
export function defineService<const M extends Record<string, AnyMethod>, const E extends Record<string, StandardSchemaV1 | null> = Record<never, never>, const N extends string = string>(
  spec: ServiceSpec<M, E> & { name: N },
): Service<M, E, N> {
  if (!spec.name || spec.name.startsWith('$') || spec.name.includes('.')) {
    throw new TypeError(`service name "${spec.name}" must be non-empty, without "." and not start with "$"`);
  }
  const info = new ServiceInfo(spec);
  const target: Record<string | symbol, unknown> = Object.create(null);
  for (const [name, def] of Object.entries(spec.methods)) {
    if (name === '' || name.startsWith('$') || name.includes('.') || RESERVED_NAMES.has(name)) {
      throw new TypeError(`method name "${name}" is not allowed: names may not be empty, contain ".", start with "$", or be one of ${[...RESERVED_NAMES].join(', ')}`);
    }
    if (typeof def?.handler !== 'function') throw new TypeError(`method ${name} has no handler`);
    const entry = entryOf(name, def);
    target[name] = (params?: unknown, options?: CallOptionsClient) => callLocal(name, entry, params, options);
  }
  Object.defineProperty(target, SERVICE, { value: info });
  return Object.freeze(target) as unknown as Service<M, E, N>;
}

/**
 * The metadata and event emitter ({@link ServiceInfo}) of a service made by
 * {@link defineService}.
 *
 * @throws TypeError when `service` was not made by defineService.
 */
export function serviceOf<M extends Record<string, AnyMethod>, E extends Record<string, StandardSchemaV1 | null>, N extends string = string>(service: Service<M, E, N>): ServiceInfo<M, E, N> {
  const info = (service as { [SERVICE]?: ServiceInfo<M, E, N> } | null)?.[SERVICE];
  if (!info) throw new TypeError('not a service made by defineService');
  return info;
}

/**
 * Whether `value` is a service made by {@link defineService} (of this copy
 * of ipcbor), as opposed to, say, a plain object of handler functions.
 */
export function isService(value: unknown): value is AnyService {
  return typeof value === 'object' && value !== null && (value as { [SERVICE]?: unknown })[SERVICE] instanceof ServiceInfo;
}

/** A method as the socket side calls it: validate (when there is a schema), then run the handler. */
function entryOf(name: string, def: AnyMethod): MethodEntry {
  const schema = def.params;
  if (!schema) return { invoke: def.handler, takesParams: takesParams(def.handler) };
  return {
    invoke: (params: unknown, ctx: CallContext) => validateThen(schema, params, name, (valid) => def.handler(valid, ctx)),
  };
}

/**
 * A service and the prefix it answers under, for serving several services
 * on one socket (`serve([{ service, prefix }, …])`) or under a name other
 * than its own.
 */
export interface Mounted {
  /** The service to serve. */
  service: AnyService;
  /** Answer under `prefix.method`; default: the service's name. */
  prefix?: string;
}

/** One method as `$ipcbor.describe` answers it (part of {@link DescribeService}). */
export interface DescribeMethod {
  /** The method's own name, without the service prefix. */
  name: string;
  /** The method's description, when it has one. */
  description?: string;
  /** JSON Schema of the params, where the schema library can produce one; null when unknown. */
  params: Record<string, unknown> | null;
  /** JSON Schema of the result, where the method declares a `result` schema that can produce one; null otherwise. */
  result: Record<string, unknown> | null;
}

/** One served service as `$ipcbor.describe` answers it (part of {@link Description}). */
export interface DescribeService {
  /** The service's name. */
  name: string;
  /** The service's version. */
  version: string;
  /** The service's description, when it has one. */
  description?: string;
  /** Methods answer as `prefix.method`. */
  prefix: string;
  /** Also answers bare method names (base-framing clients). */
  default: boolean;
  /** Its methods, in the order they were defined. */
  methods: DescribeMethod[];
  /** Its declared events. */
  events: {
    /** The event's own name, without the service prefix. */
    name: string;
    /** JSON Schema of the payload, where the event has a schema that can produce one; null otherwise. */
    payload: Record<string, unknown> | null;
  }[];
}

/**
 * What a server answers to the method `$ipcbor.describe` (and what
 * `ipcbor describe` prints): the services it serves, their methods and
 * events, with JSON Schemas where their schemas can give one.
 */
export interface Description {
  /** The services served, in the order they were mounted. */
  services: DescribeService[];
  /** Methods not from a service (a plain handler object); null schemas. */
  methods?: string[];
}


function jsonSchemaOf(schema: StandardSchemaV1 | null | undefined, io: 'input' | 'output'): Record<string, unknown> | null {
  const conv = (schema as Partial<StandardJSONSchemaV1> | null | undefined)?.['~standard']?.jsonSchema;
  if (!conv) return null;
  try {
    return conv[io]({ target: 'draft-2020-12' });
  } catch {
    return null;
  }
}

/**
 * A dispatcher over several services: each answers under its prefix, the
 * default one also under bare names, and `$ipcbor.describe` answers what is
 * there. `serve()` builds one from a service or an array of them; one built
 * yourself is a {@link Dispatcher}, which `serve()` and `ServerCore` take as
 * well.
 */
export class ServiceRouter implements Dispatcher {
  private readonly table = new Map<string, MethodEntry>();
  private readonly events = new Set<string>();
  private readonly mounted: { info: ServiceInfo; prefix: string; isDefault: boolean }[] = [];
  private description: Description | undefined;

  /**
   * @param services - The services, each bare (under its own name) or as
   * a {@link Mounted} with its prefix.
   * @param defaultService - The service that also answers bare method names
   * (as base-framing clients call them); default: the first one; `null`:
   * none.
   * @throws TypeError when `defaultService` is not one of `services`, a
   * prefix is empty, contains `.` or starts with `$`, two services share a
   * prefix, or two methods would answer to the same name.
   */
  constructor(services: readonly (AnyService | Mounted)[], defaultService?: AnyService | null) {
    const list = services.map((s) => (isService(s) ? { service: s } : s));
    const dflt = defaultService === undefined ? list[0]?.service : defaultService;
    if (dflt && !list.some((m) => m.service === dflt)) throw new TypeError('defaultService must be one of the services served');
    for (const { service, prefix } of list) {
      const info = service[SERVICE];
      const p = prefix ?? info.name;
      if (p === '' || p.includes('.') || p.startsWith('$')) throw new TypeError(`prefix "${p}" must be non-empty, without "." and not start with "$"`);
      if (this.mounted.some((m) => m.prefix === p)) throw new TypeError(`two services under the prefix "${p}"`);
      const isDefault = service === dflt && !this.mounted.some((m) => m.isDefault);
      this.mounted.push({ info, prefix: p, isDefault });
      for (const [name, def] of Object.entries(info.methods as Record<string, AnyMethod>)) {
        const entry = entryOf(name, def);
        for (const key of isDefault ? [`${p}.${name}`, name] : [`${p}.${name}`]) {
          if (this.table.has(key)) throw new TypeError(`two methods answer to "${key}"`);
          this.table.set(key, entry);
        }
      }
    }
    this.table.set(DESCRIBE_METHOD, { invoke: () => this.describe(), takesParams: false });
    for (const { info, prefix, isDefault } of this.mounted) {
      for (const event of Object.keys(info.events as object)) {
        this.events.add(`${prefix}.${event}`);
        if (isDefault) this.events.add(event);
      }
    }
  }

  /** The events clients may subscribe to: each service's under its prefix, the default one's also bare. */
  eventNames(): ReadonlySet<string> {
    return this.events;
  }

  /** The method answering to the name `method` (`prefix.name`, a bare name of the default service, or `$ipcbor.describe`); undefined when none does. */
  lookup(method: string): MethodEntry | undefined {
    return this.table.get(method);
  }

  /** Every callable method name (with the default service's bare names), without the reserved `$ipcbor.` ones. */
  methodNames(): string[] {
    return [...this.table.keys()].filter((n) => !n.startsWith('$'));
  }

  /**
   * Forward every mounted service's events to `sink` (a server's event
   * hub) as `prefix.name`; the default service's events may also be
   * subscribed to by their bare name (the alias).
   */
  forwardEvents(sink: (name: string, payload: unknown, alias?: string) => void): () => void {
    const offs = this.mounted.map(({ info, prefix, isDefault }) =>
      info.addSink((name, payload) => (isDefault ? sink(`${prefix}.${name}`, payload, name) : sink(`${prefix}.${name}`, payload))),
    );
    return () => offs.forEach((off) => off());
  }

  /** What `$ipcbor.describe` answers: the mounted services, their methods and events (built once, then reused). */
  describe(): Description {
    this.description ??= {
      services: this.mounted.map(({ info, prefix, isDefault }) => {
        const d: DescribeService = {
          name: info.name,
          version: info.version,
          prefix,
          default: isDefault,
          methods: Object.entries(info.methods).map(([name, def]) => {
            const m: DescribeMethod = { name, params: jsonSchemaOf(def.params, 'input'), result: jsonSchemaOf(def.result, 'output') };
            if (def.description) m.description = def.description;
            return m;
          }),
          events: Object.entries(info.events as Record<string, StandardSchemaV1 | null>).map(([name, schema]) => ({ name, payload: jsonSchemaOf(schema, 'output') })),
        };
        if (info.description) d.description = info.description;
        return d;
      }),
    };
    return this.description;
  }
}
