/**
 * The conformance service: the small service a server under test serves so
 * that conformance/vectors.json can be run against it (see
 * conformance/README.md). ipcbor serves it with `ipcbor conformance --serve
 * ADDRESS`, so a client written in another language has a server to talk to.
 *
 * Methods (params are the CBOR payload of the call):
 *   echo(x) -> x                 the params, unchanged (no params: null)
 *   fail({message}) -> error     the handler fails with that message
 *   sleep({ms}) -> null          answers after ms milliseconds; ends early on cancel or deadline
 *   count({n}) -> stream 0..n-1  a result stream of n integers
 *   sum(stream) -> number        the sum of an input stream of numbers
 *   first(stream) -> item        the first item of an input stream; reads no further
 *   hold(stream) -> never        never reads its input stream; ends on cancel or deadline
 *   emit({name, payload}) -> null  fires event `name` (tick or tock) with `payload`
 * Events: tick, tock.
 */
import { IpcborError } from '../errors.js';
import { s } from '../schema.js';
import { defineService, method, serviceOf } from '../service.js';

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
function pause(ms: number, signal: AbortSignal): Promise<null> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(null);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

function asStream(params: unknown, name: string): AsyncIterable<unknown> {
  if (typeof params === 'object' && params !== null && Symbol.asyncIterator in params) return params as AsyncIterable<unknown>;
  throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `${name} takes a stream of params`);
}

/**
 * A new conformance service (each has its own events, so two servers of it
 * do not share them): the service named `conformance` that
 * conformance/vectors.json is run against. Serve it to test a client
 * written in another language (`ipcbor conformance --serve ADDRESS` does).
 *
 * @example
 * ```ts
 * const server = await serve(createConformanceService(), 'tcp:127.0.0.1:0');
 * ```
 */
export function createConformanceService() {
  const service = defineService({
    name: 'conformance',
    version: '1.0.0',
    description: 'The service conformance/vectors.json is run against',
    methods: {
      /** Answers the params unchanged (`null` when there are none). */
      echo: method({ handler: (params: unknown) => params ?? null }),
      /** Fails: the handler throws an Error with `message`, which the caller gets as the call's error. */
      fail: method({
        params: s.object({ message: s.string() }),
        handler: ({ message }) => {
          throw new Error(message);
        },
      }),
      /**
       * Answers `null` after `ms` milliseconds; ends early, with the
       * signal's reason, when the call is cancelled or its deadline passes.
       */
      sleep: method({ params: s.object({ ms: s.int() }), handler: ({ ms }, ctx) => pause(ms, ctx.signal) }),
      /** Answers a result stream of the `n` integers 0 to n-1. */
      count: method({
        params: s.object({ n: s.int() }),
        handler: async function* ({ n }) {
          for (let i = 0; i < n; i++) yield i;
        },
      }),
      /**
       * Takes an input stream of numbers and answers their sum. Rejects
       * with `IPCBOR_ERR_INVALID_PARAMS` when its params are not a stream,
       * or an item is not a number.
       */
      sum: method({
        handler: async (params: unknown) => {
          let total = 0;
          for await (const x of asStream(params, 'sum')) {
            if (typeof x !== 'number') throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `sum: expected numbers, got ${typeof x}`);
            total += x;
          }
          return total;
        },
      }),
      /**
       * Takes an input stream and answers its first item (`null` when it
       * is empty), reading no further. Rejects with
       * `IPCBOR_ERR_INVALID_PARAMS` when its params are not a stream.
       */
      first: method({
        handler: async (params: unknown) => {
          for await (const x of asStream(params, 'first')) return x;
          return null;
        },
      }),
      /**
       * Takes an input stream and never reads it nor answers; it ends, with
       * the signal's reason, when the call is cancelled or its deadline
       * passes. Rejects with `IPCBOR_ERR_INVALID_PARAMS` when its params are
       * not a stream.
       */
      hold: method({
        handler: (params: unknown, ctx) => {
          asStream(params, 'hold');
          return untilAborted(ctx.signal);
        },
      }),
      /**
       * Emits event `name` (`tick` or `tock`) with `payload` (`null` when
       * absent) and answers `null`. Rejects with `IPCBOR_ERR_INVALID_PARAMS`
       * for any other name.
       */
      emit: method({
        params: s.object({ name: s.string(), payload: s.optional(s.unknown()) }),
        handler: ({ name, payload }) => {
          if (name !== 'tick' && name !== 'tock') throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', `name: expected "tick" or "tock", got ${JSON.stringify(name)}`);
          serviceOf(service).emit(name, payload ?? null);
          return null;
        },
      }),
    },
    events: {
      /** An event with any payload, fired by `emit({ name: 'tick', payload })`. */
      tick: null,
      /** An event with any payload, fired by `emit({ name: 'tock', payload })`. */
      tock: null,
    },
  });
  return service;
}

/**
 * The type of the service {@link createConformanceService} makes, for a
 * typed client: `client.service<ConformanceService>('conformance')`.
 */
export type ConformanceService = ReturnType<typeof createConformanceService>;
