/**
 * ipcbor for Node.js: CBOR messages over unix sockets, TCP and TLS, in the
 * base framing (the length-prefixed framing of nim-ffi's IPC examples) and
 * the extended protocol on top of it.
 *
 * Start with {@link serve} on the server side and {@link connect} on the
 * client side; {@link defineService} and {@link s} describe a typed service,
 * {@link createRelay} exposes one over TCP, TLS or WebSocket.
 *
 * @example
 * ```ts
 * import { connect, defineService, method, s, serve } from 'ipcbor';
 *
 * const greeter = defineService({
 *   name: 'greeter',
 *   methods: {
 *     hello: method({
 *       params: s.object({ name: s.string() }),
 *       handler: ({ name }) => ({ text: `hello ${name}` }),
 *     }),
 *   },
 * });
 *
 * const server = await serve(greeter, 'greeter'); // a socket in the runtime directory
 * await using client = await connect('greeter');
 * const { text } = await client.service<typeof greeter>().hello({ name: 'ada' });
 * await server.close();
 * ```
 *
 * @packageDocumentation
 * @module ipcbor
 */
export { serve, type Server, type ServeOptions, type Servable } from './node/server.js';
export { connect, type Client, type ConnectOptions } from './node/client.js';
export type { ClientState, ClientStateChange, ReconnectOptions } from './core/client/client.js';
export { serveLazy, callOnce, type LazyServer, type LazyServable } from './node/lazy.js';
export { createRelay, DEFAULT_WS_IDLE_TIMEOUT, type Relay, type RelayOptions, type RelayAdapter, type BridgeOptions } from './node/relay.js';
export { createLoop, type EventLoop, type LoopEvent, type LoopMessage, type LoopConnection, type LoopOptions } from './node/loop.js';
export { parseAddress, formatAddress, addressFromArgs, addressesFromArgs, type Address } from './node/address.js';
export { runtimeDir, socketPathFor, listServiceNames } from './node/rundir.js';
export { checkSocketOwner, type SocketOwner } from './node/trust.js';
export type { TlsServerOptions, TlsClientOptions, Pem } from './node/tls.js';
export { IpcborError, RemoteError, type ErrorCode } from './core/errors.js';
export { cbor, createCodec, DEFAULT_MAX_ITEMS, type Codec, type CodecOptions } from './core/codec/cbor.js';
export { diagnose, type DiagnosticOptions } from './core/codec/diagnostic.js';
export type { RelayEvent, RelayFrameEvent, RelayOpenEvent, RelayCloseEvent, RelayObserver, RelayedConnection } from './core/relay/observe.js';
export { defineService, method, serviceOf, isService, ServiceInfo, ServiceRouter } from './core/service.js';
export type { Service, AnyService, MethodDef, AnyMethod, Callable, Mounted, Description, DescribeService, DescribeMethod, EventsOf, Unlisten, ServiceName } from './core/service.js';
export type { Remote, RemoteEvents, ServiceArgs } from './core/client/remote.js';
export { s, formatPath, type Schema, type Infer } from './core/schema.js';
export { validate } from './core/validate.js';
export { createConformanceService, type ConformanceService } from './core/conformance/service.js';
export type { CallContext, Handler, Dispatcher } from './core/dispatcher.js';
export type { CallOptions } from './core/call-options.js';
export type { ConnectionInfo, PeerIdentity } from './core/transport.js';
export { Subscription, type EventListener, type EventMessage } from './core/client/subscription.js';
export * from './core/defaults.js';
