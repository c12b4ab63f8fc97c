/**
 * Compiled by tsconfig.browser.json only (with the DOM library): the
 * browser's own WebSocket class is one the browser client accepts.
 */
import type { WebSocketConstructor } from '../src/browser/websocket.js';

export const browserWebSocket: WebSocketConstructor = WebSocket;
