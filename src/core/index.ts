/**
 * The platform-free core, for building a transport of your own (a
 * WebSocket, a pipe, a message port): a server that takes Transports, a
 * client that dials through a function you give it, the codec, and the
 * service layer. It uses no Node API. Internals (the peer, the frame
 * decoder, heads) are not exported: they change.
 */
// The defaults and the protocol's constants users may read (the rest of constants.ts is internal).
export {
  DEFAULT_MAX_METHOD_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_INFLIGHT,
  DEFAULT_EVENT_QUEUE,
  DEFAULT_EVENT_QUEUE_BYTES,
  DEFAULT_MAX_CONNECTION_BYTES,
  DEFAULT_MAX_SERVER_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HANDSHAKES,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_FRAME_TIMEOUT,
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_SUBSCRIPTIONS,
  DEFAULT_MAX_EVENT_NAME_BYTES,
  DEFAULT_STREAM_WINDOW,
  DEFAULT_WRITE_HIGH_WATER,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_MAX_QUEUED,
  DEFAULT_RECONNECT,
  CLOSE_LINGER_MS,
  PROTOCOL_VERSION,
  RESERVED_PREFIX,
  MAX_TIMER_MS,
  MAX_ERROR_TEXT,
} from './constants.js';
export { IpcborError, RemoteError, type ErrorCode, type IpcborErrorOptions } from './errors.js';
export { cbor, createCodec, DEFAULT_MAX_ITEMS, type Codec, type CodecOptions } from './codec/cbor.js';
export type { Transport, TransportSink, OpenTransport, Dialer, ConnectionInfo, PeerIdentity, Disposable } from './transport.js';
export { ServerCore, type ServerCoreOptions, type Servable } from './server/server.js';
export type { ConnectionHandle, ServerLimits } from './server/connection.js';
export { dispatch, type IncomingCall, type Executor } from './server/call.js';
export type { CallContext, Dispatcher, Handler, MethodEntry } from './dispatcher.js';
export { createClient, type Client, type ClientOptions, type ClientState, type ClientStateChange, type ReconnectOptions } from './client/client.js';
export type { CallOptions } from './call-options.js';
export { Subscription, type EventListener, type EventMessage } from './client/subscription.js';
export { defineService, method, serviceOf, isService, ServiceInfo, ServiceRouter } from './service.js';
export type { Service, AnyService, MethodDef, AnyMethod, Callable, Mounted, Description, DescribeService, DescribeMethod, EventsOf, Unlisten } from './service.js';
export type { Remote, RemoteEvents } from './client/remote.js';
export { s, formatPath, type Schema, type Infer } from './schema.js';
export { validate } from './validate.js';
