/**
 * @module server
 * Public entry of `stowage/server`: run the embedded server (`startServer`)
 * or mount the HTTP API in your own Hono/Node app (`createApp`).
 */
/** The HTTP API as a Hono app (no socket). */
export { createApp, DEFAULT_BLOB_BODY_BYTES, DEFAULT_JSON_BODY_BYTES, type AppOptions } from './app.js';
/** Runs the embedded server on a data dir. */
export { startServer, DEFAULT_PORT, type RunningServer, type StartServerOptions } from './serve.js';
/** The error code -> HTTP status table, for embedders. */
export { HTTP_STATUS, toErrorResponse } from './error-map.js';
