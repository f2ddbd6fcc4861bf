/**
 * @module wire
 * The JSON shapes of the HTTP API under /v1: the one contract shared by the
 * server (which validates them with zod and publishes them as OpenAPI) and
 * the SDK (which has no runtime dependencies). Types only, no code.
 *
 * Conventions: sizes in bytes (numbers); times as ISO-8601 strings; ids as
 * strings; paths absolute inside the volume ("/a/b").
 * Errors: every non-2xx answer is `ErrorBody`.
 *
 * The records (Volume, Commit, Snapshot, Attachment, Tenant, Token) and
 * their vocabulary are not defined here: each is the `Json` mirror of the
 * domain model's record (model/records), less what stays inside the server.
 *
 * The shapes live by resource under wire/; this module gathers them, so
 * `import type * as wire from '.../api/wire.js'` sees every one.
 */
import type { AccessMode, AttachmentState, MountTuning } from '../model/records.js';

export type { AccessMode, AttachmentState, MountTuning };
export type * from './wire/volumes.js';
export type * from './wire/files.js';
export type * from './wire/transfers.js';
export type * from './wire/search.js';
export type * from './wire/commits.js';
export type * from './wire/attachments.js';
export type * from './wire/tenant.js';
export type * from './wire/sandboxes.js';

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}
