/**
 * @module server/schemas/commit-schemas
 * The commit protocol: chunk and pack uploads, changes, commits and their history.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { MAX_COMMIT_CHANGES } from '@stowage/sdk/common/limits.js';
import { Bytes, entryAttributes, Millis, OwnerId, Path, Ref, SignedRequestSchema } from './common-schemas.js';
import { QueryInt } from './query-schemas.js';

/** Wire `UploadRequest` (api/wire.ts). */
export const UploadRequestSchema = z
  .object({ chunks: z.array(z.object({ hash: Ref, size: Bytes })) })
  .openapi('UploadRequest') satisfies z.ZodType<wire.UploadRequest>;

/** Wire `UploadResponse` (api/wire.ts). */
export const UploadResponseSchema = z
  .object({
    missing: z.array(z.object({ hash: z.string(), size: Bytes, key: z.string(), request: SignedRequestSchema })),
    present: Bytes,
  })
  .openapi('UploadResponse') satisfies z.ZodType<wire.UploadResponse>;

/** Wire `PackRequest` (api/wire.ts). */
export const PackRequestSchema = z.object({ size: Bytes, sha256: Ref }).openapi('PackRequest') satisfies z.ZodType<wire.PackRequest>;

/** Wire `PackResponse` (api/wire.ts). */
export const PackResponseSchema = z.object({ key: z.string(), request: SignedRequestSchema }).openapi('PackResponse') satisfies z.ZodType<wire.PackResponse>;

/** Wire `PackManifest` (api/wire.ts). */
export const PackManifestSchema = z
  .object({ key: Ref, chunks: z.array(z.object({ hash: Ref, offset: Bytes, size: Bytes })) })
  .openapi('PackManifest') satisfies z.ZodType<wire.PackManifest>;

const Mode = z.number().int().min(0);
const Mtime = Millis;

/** Wire `Change` (api/wire.ts). */
export const ChangeSchema = z
  .discriminatedUnion('op', [
    z.object({
      op: z.literal('put'),
      path: Path,
      size: Bytes,
      chunkSize: Bytes,
      chunks: z.array(Ref),
      mode: Mode.optional(),
      mtime: Mtime.optional(),
      createParents: z.boolean().optional(),
      ...entryAttributes,
    }).openapi({ description: 'Create or replace a regular file. A replaced file keeps nothing of the old entry: no owner unless given, mtime now unless given, atime/ctime as mtime unless given. A *Ns field needs its ms field.' }),
    z.object({ op: z.literal('symlink'), path: Path, target: Path, mtime: Mtime.optional(), createParents: z.boolean().optional(), ...entryAttributes }),
    z.object({ op: z.literal('mkdir'), path: Path, mode: Mode.optional(), mtime: Mtime.optional(), ...entryAttributes })
      .openapi({ description: 'Create a directory; parents created on the way get the same mode, times and owner; an existing directory is kept as it is.' }),
    z.object({ op: z.literal('delete'), path: Path, recursive: z.boolean().optional(), mustExist: z.boolean().optional() }).openapi({ description: 'Takes no attributes.' }),
    z.object({ op: z.literal('move'), from: Path, to: Path, overwrite: z.boolean().optional() }).openapi({ description: 'The entry keeps its owner and times. Takes no attributes.' }),
    z.object({
      op: z.literal('setattr'), path: Path, mode: Mode.optional(), mtime: Mtime.optional(),
      ...entryAttributes,
      uid: OwnerId.nullable().optional().openapi({ description: 'New recorded owner; null removes it.' }),
      gid: OwnerId.nullable().optional().openapi({ description: 'New recorded group; null removes it.' }),
    }).openapi({ description: 'Changes the given attributes; the others keep what a reader saw (a mtime-only change leaves atime and ctime). A time without its ns sets ns 0.' }),
  ])
  .openapi('Change') satisfies z.ZodType<wire.Change>;

/**
 * The changes of a commit: documented as `Change` items but only counted
 * here (over the bound: 413, see app.ts defaultHook). The engine checks each
 * change with the same rules (engine/change-set.ts) a slice at a time, so a
 * 100,000-change commit never holds the event loop; validating them here too
 * would hold it for a few hundred ms per big commit.
 */
const ChangeList = z
  .array(z.unknown())
  .max(MAX_COMMIT_CHANGES)
  .openapi({ type: 'array', items: { $ref: '#/components/schemas/Change' }, maxItems: MAX_COMMIT_CHANGES }) as unknown as z.ZodArray<typeof ChangeSchema>;

/** Wire `CommitRequest` (api/wire.ts). */
export const CommitRequestSchema = z
  .object({
    base: Ref.optional(),
    message: z.string().max(65536).optional(),
    changes: ChangeList,
    uploads: z.array(z.object({ hash: Ref, key: Ref })).optional(),
    packs: z.array(PackManifestSchema).optional(),
    onConflict: z.enum(['overwrite', 'fail']).optional(),
    bestEffort: z.boolean().optional().openapi({ description: 'Skip (and report in `skipped`) changes that no longer apply to head instead of failing the commit.' }),
  })
  .openapi('CommitRequest') satisfies z.ZodType<wire.CommitRequest>;

/** Wire `Commit` (api/wire.ts). */
export const CommitSchema = z
  .object({
    id: z.string(),
    volumeId: z.string(),
    seq: Bytes,
    parent: z.string().nullable(),
    tree: z.string(),
    message: z.string(),
    author: z.string(),
    size: Bytes,
    fileCount: Bytes,
    changed: Bytes,
    paths: z.array(z.string()),
    overwritten: z.array(z.string()),
    createdAt: z.string(),
  })
  .openapi('Commit') satisfies z.ZodType<wire.Commit>;

/** Wire `SkippedChange` (api/wire.ts). */
export const SkippedChangeSchema = z
  .object({ index: z.number().int().min(0), path: z.string(), reason: z.string() })
  .openapi('SkippedChange') satisfies z.ZodType<wire.SkippedChange>;

/** Wire `CommitResponse` (api/wire.ts). */
export const CommitResponseSchema = z
  .object({ commit: CommitSchema, overwritten: z.array(z.string()), skipped: z.array(SkippedChangeSchema) })
  .openapi('CommitResponse') satisfies z.ZodType<wire.CommitResponse>;

/** Wire `CommitList` (api/wire.ts). */
export const CommitListSchema = z
  .object({ commits: z.array(CommitSchema), nextBefore: z.number().int().nullable() })
  .openapi('CommitList') satisfies z.ZodType<wire.CommitList>;

/** Query of GET /v1/volumes/{name}/commits. */
export const CommitsQuerySchema = z.object({
  limit: QueryInt(1).openapi({ param: { name: 'limit', in: 'query' }, type: 'integer' }),
  before: QueryInt(0).openapi({ param: { name: 'before', in: 'query' }, description: 'Only commits with a seq below this one (from nextBefore).', type: 'integer' }),
});
