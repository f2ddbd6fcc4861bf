/**
 * @module server
 * Public entry of `stowage/server`: run the embedded server (`startServer`)
 * or mount the HTTP API in your own Hono/Node app (`createApp`).
 */
export { createApp, DEFAULT_BLOB_BODY_BYTES, DEFAULT_JSON_BODY_BYTES, type AppOptions } from './app.js';
export { startServer, DEFAULT_PORT, type RunningServer, type StartServerOptions } from './serve.js';
export { HTTP_STATUS, toErrorResponse } from './error-map.js';
