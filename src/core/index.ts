/** The transport-free core: framing, codec, sessions. Runs on any byte stream; no Node APIs. */
export * from './constants.js';
export { IpcborError, RemoteError, type ErrorCode, type IpcborErrorOptions } from './errors.js';
export { cbor, createCodec, type Codec, type CodecOptions } from './codec/cbor.js';
export { FrameDecoder, MAX_HEAD_BYTES, type DecoderMode, type FrameLimits, type FrameSink } from './frame/decoder.js';
export { encodeRequest, encodeResponse, encodeErrorResponse, encodeExtended, concatParts, type FrameParts } from './frame/encoder.js';
export { ServerSession, type ServerLimits, type ServerSessionOptions } from './rpc/server-session.js';
export { ClientSession, type CallOptionsClient, type ClientSessionOptions } from './rpc/client-session.js';
export { EventHub } from './rpc/event-hub.js';
export { handlersDispatcher, type CallContext, type Dispatcher, type Handler, type MethodEntry } from './rpc/dispatcher.js';
export { Subscription, type EventListener, type EventMessage } from './rpc/subscription.js';
export { Kind, HELLO_METHOD, type HelloRequest, type HelloResponse } from './rpc/protocol.js';
export type { Transport, ConnectionInfo } from './rpc/transport.js';
