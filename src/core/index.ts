/**
 * The platform-free core, for building a transport of your own (a
 * WebSocket, a pipe, a message port): a server that takes Transports, a
 * client that dials through a function you give it, the codec, and the
 * service layer. It uses no Node API. Internals (the peer, the frame
 * decoder, heads) are not exported: they change.
 *
 * Everything `ipcbor` exports that needs no Node API is here too
 * ({@link IpcborError}, {@link cbor}, {@link defineService}, {@link s}, ...).
 *
 * @packageDocumentation
 * @module ipcbor/core
 */
export * from './defaults.js';
export { IpcborError, RemoteError, type ErrorCode, type IpcborErrorOptions } from './errors.js';
export { cbor, createCodec, DEFAULT_MAX_ITEMS, type Codec, type CodecOptions } from './codec/cbor.js';
export { diagnose, type DiagnosticOptions } from './codec/diagnostic.js';
export type { Transport, TransportSink, OpenTransport, Dialer, ConnectionInfo, PeerIdentity, Disposable } from './transport.js';
export { ServerCore, type ServerCoreOptions, type Servable } from './server/server.js';
export type { ConnectionHandle, ServerLimits } from './server/connection.js';
export { dispatch, type IncomingCall, type Executor } from './server/call.js';
export type { CallContext, Dispatcher, Handler, MethodEntry } from './dispatcher.js';
export { createClient, type Client, type ClientOptions, type ClientState, type ClientStateChange, type ReconnectOptions } from './client/client.js';
export type { CallOptions } from './call-options.js';
export { Subscription, type EventListener, type EventMessage } from './client/subscription.js';
export { defineService, method, serviceOf, isService, ServiceInfo, ServiceRouter } from './service.js';
export { createConformanceService, type ConformanceService } from './conformance/service.js';
export type { Service, AnyService, MethodDef, AnyMethod, Callable, Mounted, Description, DescribeService, DescribeMethod, EventsOf, Unlisten, ServiceName } from './service.js';
export type { Remote, RemoteEvents, ServiceArgs } from './client/remote.js';
export { s, formatPath, type Schema, type Infer } from './schema.js';
export { validate } from './validate.js';
