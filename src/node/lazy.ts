/**
 * The lazy server (nim-ffi's `ipc-server`): connections are accepted and
 * requests decoded in the background, but no handler runs until the
 * application calls `handleNewMessages(context)` from its own loop.
 *
 *     const server = await serveLazy(admin, 'sim-admin');
 *     setInterval(() => {
 *       simulation.step();
 *       server.handleNewMessages(simulation);   // settings change only between steps
 *     }, 100);
 */
import { IpcborError } from '../core/errors.js';
import { ParkedCalls } from '../core/server/parked.js';
import type { Servable } from '../core/server/server.js';
import type { Address } from './address.js';
import { serveWith, type ServeOptions, type Server } from './server.js';
import { connect, type ConnectOptions } from './client.js';
import type { CallOptions as CallOptionsClient } from '../core/call-options.js';
import type { CallContext, Dispatcher } from '../core/dispatcher.js';
import type { MethodDef, Mounted, NotAService, Service } from '../core/service.js';

/**
 * What `serveLazy<App>` serves: anything a server serves, whose handlers
 * take an `App` as `ctx.app`. Handlers written inline see `ctx.app` as an
 * App; a service's methods declared with `ctx: CallContext<Other>` are
 * refused unless an App is an Other.
 */
export type LazyServable<App> =
  | Service<Record<string, MethodDef<any, any, any, App>>, any, any> // eslint-disable-line @typescript-eslint/no-explicit-any
  | readonly (Service<Record<string, MethodDef<any, any, any, App>>, any, any> | Mounted)[] // eslint-disable-line @typescript-eslint/no-explicit-any
  | Dispatcher
  | (Record<string, (params: any, ctx: CallContext<App>) => unknown> & NotAService); // eslint-disable-line @typescript-eslint/no-explicit-any

export interface LazyServer<App = unknown> extends Server {
  /** Calls waiting for the next handleNewMessages (some may have ended meanwhile). */
  readonly pending: number;
  /**
   * Run every call that arrived since the last time, with `context` as the
   * handlers' `ctx.app`, and send their answers. Handlers that return a
   * plain value complete inside this call; async ones complete later.
   * Returns how many calls were run.
   */
  handleNewMessages(...context: undefined extends App ? [context?: App] : [context: App]): number;
  /** The same, and resolves once every call it ran has been answered. */
  handleNewMessagesAsync(...context: undefined extends App ? [context?: App] : [context: App]): Promise<number>;
  /**
   * Resolves when a call is waiting (at once if one is), for a loop that
   * sleeps until there is work; rejects with IPCBOR_ERR_SHUTTING_DOWN once
   * the server is closed.
   */
  nextMessage(): Promise<void>;
}

/**
 * Serve `target` lazily. Calls wait, parked, until the application asks;
 * each holds its place in its connection's byte budget, so a connection
 * whose calls pile up is no longer read (back-pressure), and a call's
 * deadline and cancellation still end it while it waits.
 */
export async function serveLazy<App = unknown>(
  target: Record<string, (params: any, ctx: CallContext<NoInfer<App>>) => unknown> & NotAService, // eslint-disable-line @typescript-eslint/no-explicit-any
  address: string | Address | readonly (string | Address)[],
  options?: ServeOptions,
): Promise<LazyServer<App>>;
export async function serveLazy<App = unknown>(target: LazyServable<NoInfer<App>>, address: string | Address | readonly (string | Address)[], options?: ServeOptions): Promise<LazyServer<App>>;
export async function serveLazy<App = unknown>(target: LazyServable<NoInfer<App>>, address: string | Address | readonly (string | Address)[], options: ServeOptions = {}): Promise<LazyServer<App>> {
  const parked = new ParkedCalls();
  const { server, core } = await serveWith(target as Servable, address, options, parked.executor);
  // Calls still parked when the server closes never started: they are
  // refused like calls that arrive during a shutdown, so close() need not
  // wait for an application loop that may have stopped.
  let stopped = false;
  /** nextMessage() callers waiting: told when the server stops, so that they do not wait for ever. */
  const sleepers = new Set<(err: IpcborError) => void>();
  const refuseParked = () => {
    stopped = true;
    for (const call of parked.take()) call.fail(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down', { method: call.method }));
    for (const wake of [...sleepers]) wake(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down'));
  };
  const lazy: LazyServer<App> = {
    addresses: server.addresses,
    get connections() {
      return server.connections;
    },
    get pending() {
      return parked.size;
    },
    emit: (name, payload) => server.emit(name, payload),
    close: () => {
      refuseParked();
      return server.close();
    },
    destroy: () => {
      refuseParked();
      server.destroy();
    },
    [Symbol.asyncDispose]: () => lazy.close(),
    handleNewMessages: (...context) => parked.run(core.dispatcher, context[0]),
    handleNewMessagesAsync: (...context) => parked.runSettled(core.dispatcher, context[0]),
    nextMessage: () =>
      new Promise<void>((resolve, reject) => {
        if (parked.size > 0) return resolve();
        if (stopped) return reject(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down'));
        const done = () => {
          off();
          sleepers.delete(stop);
        };
        const stop = (err: IpcborError) => {
          done();
          reject(err);
        };
        const off = parked.onParked(() => {
          done();
          resolve();
        });
        sleepers.add(stop);
      }),
  };
  return lazy;
}

/**
 * `client_send` of nim-ffi's examples: connect, make one call, close. For scripts;
 * a program that calls more than once should keep a client.
 */
export async function callOnce<R = unknown>(address: string | Address, method: string, params?: unknown, options: ConnectOptions & CallOptionsClient = {}): Promise<R> {
  const client = await connect(address, options);
  try {
    return await client.call<R>(method, params, { ...(options.timeout === undefined ? {} : { timeout: options.timeout }), ...(options.signal === undefined ? {} : { signal: options.signal }) });
  } finally {
    await client.close();
  }
}
