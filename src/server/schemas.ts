/**
 * @module server/schemas
 * The zod schemas of the HTTP API: one per shape of `api/wire.ts`. They
 * validate requests (through the routes' `createRoute` definitions) and are
 * the source of `/v1/openapi.json`. Each schema is checked at compile time
 * against its wire type (`satisfies z.ZodType<wire.X>`), so the server, the
 * OpenAPI document and the SDK cannot drift apart.
 *
 * The schemas check shapes and types only. Names, paths, ids and hashes are
 * validated by the engine (parseVolumeName, parsePath), which owns those rules.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { MAX_COMMIT_CHANGES, MAX_OWNER_ID, MAX_TIME_MS, MAX_TIME_NS } from '@stowage/sdk/common/limits.js';

/** A whole, non-negative number of bytes (or a count). */
const Bytes = z.number().int().min(0);
/** A free-form identifier string passed through to the engine. */
const Ref = z.string().max(1024);

// --- errors ---

/** Wire `ErrorBody` (api/wire.ts). */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'NotFound' }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .openapi('ErrorBody') satisfies z.ZodType<wire.ErrorBody>;

/** GET /v1/health answer. */
export const HealthSchema = z.object({ ok: z.literal(true) }).openapi('Health');

// --- volumes ---

/** Wire `AccessMode` (api/wire.ts). */
export const AccessModeSchema = z.enum(['RWO', 'ROX', 'RWX']).openapi('AccessMode') satisfies z.ZodType<wire.AccessMode>;

/** Wire `MountTuning` (api/wire.ts). */
export const MountTuningSchema = z
  .object({ cacheSize: Bytes, bufferSize: Bytes, prefetch: Bytes, writeback: z.boolean() })
  .openapi('MountTuning') satisfies z.ZodType<wire.MountTuning>;

const PartialTuningSchema = z
  .object({ cacheSize: Bytes.optional(), bufferSize: Bytes.optional(), prefetch: Bytes.optional(), writeback: z.boolean().optional() })
  .openapi('PartialMountTuning') satisfies z.ZodType<Partial<wire.MountTuning>>;

/** Wire `Volume` (api/wire.ts). */
export const VolumeSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    accessMode: AccessModeSchema,
    cap: Bytes,
    size: Bytes,
    fileCount: Bytes,
    tuning: MountTuningSchema,
    head: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Volume') satisfies z.ZodType<wire.Volume>;

/** Wire `VolumeList` (api/wire.ts). */
export const VolumeListSchema = z.object({ volumes: z.array(VolumeSchema) }).openapi('VolumeList') satisfies z.ZodType<wire.VolumeList>;

/** PUT /v1/volumes/{name}: the name comes from the URL. */
export const CreateVolumeRequestSchema = z
  .object({ name: z.string().optional(), accessMode: AccessModeSchema.optional(), cap: Bytes.optional(), tuning: PartialTuningSchema.optional() })
  .openapi('CreateVolumeRequest') satisfies z.ZodType<wire.CreateVolumeRequest>;

/** POST /v1/volumes: like CreateVolumeRequest, with the name required. */
export const CreateVolumeBodySchema = CreateVolumeRequestSchema.extend({ name: z.string() }).openapi('CreateVolumeBody') satisfies z.ZodType<wire.CreateVolumeRequest>;

/** Wire `UpdateVolumeRequest` (api/wire.ts). */
export const UpdateVolumeRequestSchema = z
  .object({ cap: Bytes.optional(), accessMode: AccessModeSchema.optional(), tuning: PartialTuningSchema.optional() })
  .openapi('UpdateVolumeRequest') satisfies z.ZodType<wire.UpdateVolumeRequest>;

// --- files and trees ---

const OwnerId = z.number().int().min(0).max(MAX_OWNER_ID);
const Nanos = z.number().int().min(0).max(MAX_TIME_NS);
const Millis = z.number().int().min(-MAX_TIME_MS).max(MAX_TIME_MS);

/** Wire `EntryAttributes` (api/wire.ts), as fields to spread into an object schema. */
const entryAttributes = {
  uid: OwnerId.optional().openapi({ description: 'Recorded owner (0..4294967294); absent: none recorded (a mount shows its own owner). Downloads never apply it.' }),
  gid: OwnerId.optional().openapi({ description: 'Recorded group (0..4294967294); absent: none recorded.' }),
  mtimeNs: Nanos.optional().openapi({ description: 'Nanoseconds past the millisecond in mtime (0..999999); absent: 0.' }),
  atime: Millis.optional().openapi({ description: 'Last access, ms since the epoch; absent: the same as mtime (and mtimeNs).' }),
  atimeNs: Nanos.optional().openapi({ description: 'Nanoseconds past the millisecond in atime (0..999999); absent: 0.' }),
  ctime: Millis.optional().openapi({ description: 'Last change of the entry, ms since the epoch; absent: the same as mtime (and mtimeNs).' }),
  ctimeNs: Nanos.optional().openapi({ description: 'Nanoseconds past the millisecond in ctime (0..999999); absent: 0.' }),
};

/** Wire `FileInfo` (api/wire.ts). */
export const FileInfoSchema = z
  .object({
    path: z.string(),
    name: z.string(),
    type: z.enum(['file', 'dir', 'symlink']),
    mode: z.number().int(),
    mtime: z.number(),
    size: Bytes,
    fileCount: Bytes.optional(),
    chunkSize: Bytes.optional(),
    chunks: z.array(z.string()).optional(),
    target: z.string().optional(),
    ...entryAttributes,
  })
  .openapi('FileInfo') satisfies z.ZodType<wire.FileInfo>;

/** Wire `StatResponse` (api/wire.ts). */
export const StatResponseSchema = z.object({ commit: z.string(), entry: FileInfoSchema }).openapi('StatResponse') satisfies z.ZodType<wire.StatResponse>;

/** Wire `ListResponse` (api/wire.ts). */
export const ListResponseSchema = z
  .object({ commit: z.string(), entries: z.array(FileInfoSchema), nextCursor: z.string().nullable() })
  .openapi('ListResponse') satisfies z.ZodType<wire.ListResponse>;

/** Wire `SignedRequest` (api/wire.ts). */
export const SignedRequestSchema = z
  .object({ url: z.string(), method: z.enum(['GET', 'PUT']), headers: z.record(z.string(), z.string()), expiresAt: z.string() })
  .openapi('SignedRequest') satisfies z.ZodType<wire.SignedRequest>;

/** Wire `ReadPlan` (api/wire.ts). */
export const ReadPlanSchema = z
  .object({
    commit: z.string(),
    entry: FileInfoSchema,
    chunks: z.array(z.object({ hash: z.string(), size: Bytes, request: SignedRequestSchema })),
  })
  .openapi('ReadPlan') satisfies z.ZodType<wire.ReadPlan>;

// --- the commit protocol ---

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

const Path = z.string().max(65536);
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

// --- snapshots, restore, fork ---

/** Wire `Snapshot` (api/wire.ts). */
export const SnapshotSchema = z
  .object({ id: z.string(), volumeId: z.string(), name: z.string(), commit: z.string(), createdAt: z.string() })
  .openapi('Snapshot') satisfies z.ZodType<wire.Snapshot>;

/** Wire `CreateSnapshotRequest` (api/wire.ts). */
export const CreateSnapshotRequestSchema = z
  .object({ name: Ref.optional(), commit: Ref.optional() })
  .openapi('CreateSnapshotRequest') satisfies z.ZodType<wire.CreateSnapshotRequest>;

/** Wire `SnapshotList` (api/wire.ts). */
export const SnapshotListSchema = z.object({ snapshots: z.array(SnapshotSchema) }).openapi('SnapshotList') satisfies z.ZodType<wire.SnapshotList>;

/** Wire `RestoreRequest` (api/wire.ts). */
export const RestoreRequestSchema = z
  .object({ snapshot: Ref.optional(), commit: Ref.optional() })
  .refine((r) => (r.snapshot === undefined) !== (r.commit === undefined), { message: 'give exactly one of "snapshot" or "commit"' })
  .openapi('RestoreRequest') satisfies z.ZodType<wire.RestoreRequest>;

/** Wire `ForkRequest` (api/wire.ts). */
export const ForkRequestSchema = z
  .object({ name: z.string(), snapshot: Ref.optional(), commit: Ref.optional(), accessMode: AccessModeSchema.optional(), cap: Bytes.optional() })
  .refine((r) => r.snapshot === undefined || r.commit === undefined, { message: 'give at most one of "snapshot" or "commit"' })
  .openapi('ForkRequest') satisfies z.ZodType<wire.ForkRequest>;

// --- attachments (mounts) ---

/** Wire `AttachmentState` (api/wire.ts). */
export const AttachmentStateSchema = z.enum(['mounted', 'released', 'failed']).openapi('AttachmentState') satisfies z.ZodType<wire.AttachmentState>;

/** Wire `Attachment` (api/wire.ts). */
export const AttachmentSchema = z
  .object({
    id: z.string(),
    volumeId: z.string(),
    volume: z.string(),
    host: z.string(),
    path: z.string(),
    readOnly: z.boolean(),
    state: AttachmentStateSchema,
    reason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    leaseExpiresAt: z.string(),
  })
  .openapi('Attachment') satisfies z.ZodType<wire.Attachment>;

/** Wire `AttachRequest` (api/wire.ts); host and path rules are the engine's. */
export const AttachRequestSchema = z
  .object({
    host: z.string().openapi({ example: 'sandbox-7', description: 'Host or sandbox name: 1-253 printable characters.' }),
    path: z.string().openapi({ example: '/mnt/data', description: 'Absolute mount path there: at most 4096 bytes, no NUL.' }),
    readOnly: z.boolean().optional(),
    resume: Ref.optional().openapi({ description: 'Take over this earlier attachment of the same volume, host and path (a restarted mount agent).' }),
  })
  .openapi('AttachRequest') satisfies z.ZodType<wire.AttachRequest>;

/** Wire `AttachResponse` (api/wire.ts). */
export const AttachResponseSchema = z
  .object({ attachment: AttachmentSchema, token: z.string(), tokenExpiresAt: z.string(), volume: VolumeSchema })
  .openapi('AttachResponse') satisfies z.ZodType<wire.AttachResponse>;

/** Wire `AttachmentList` (api/wire.ts). */
export const AttachmentListSchema = z.object({ attachments: z.array(AttachmentSchema) }).openapi('AttachmentList') satisfies z.ZodType<wire.AttachmentList>;

/** Wire `RenewAttachmentResponse` (api/wire.ts). */
export const RenewAttachmentResponseSchema = z
  .object({ attachment: AttachmentSchema, tokenExpiresAt: z.string() })
  .openapi('RenewAttachmentResponse') satisfies z.ZodType<wire.RenewAttachmentResponse>;

/** Wire `ReleaseAttachmentRequest` (api/wire.ts). */
export const ReleaseAttachmentRequestSchema = z
  .object({ failed: z.boolean().optional(), reason: z.string().optional() })
  .openapi('ReleaseAttachmentRequest') satisfies z.ZodType<wire.ReleaseAttachmentRequest>;

// --- tenant and tokens ---

/** Wire `Tenant` (api/wire.ts). */
export const TenantSchema = z
  .object({ id: z.string(), name: z.string(), defaultCap: Bytes, createdAt: z.string(), storageQuota: Bytes.nullable(), uncommittedQuota: Bytes })
  .openapi('Tenant') satisfies z.ZodType<wire.Tenant>;

/** Wire `UpdateTenantRequest` (api/wire.ts). */
export const UpdateTenantRequestSchema = z.object({ defaultCap: Bytes }).openapi('UpdateTenantRequest') satisfies z.ZodType<wire.UpdateTenantRequest>;

/** Wire `Token` (api/wire.ts). */
export const TokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    volume: z.string().nullable(),
    readOnly: z.boolean(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi('Token') satisfies z.ZodType<wire.Token>;

/** Wire `CreateTokenRequest` (api/wire.ts). */
export const CreateTokenRequestSchema = z
  .object({
    name: z.string().min(1).max(200),
    volume: z.string().optional(),
    readOnly: z.boolean().optional(),
    /** Seconds. */
    expiresIn: z.number().int().positive().optional().openapi({ description: 'Lifetime in seconds; no expiry when absent.' }),
  })
  .openapi('CreateTokenRequest') satisfies z.ZodType<wire.CreateTokenRequest>;

/** Wire `CreateTokenResponse` (api/wire.ts). */
export const CreateTokenResponseSchema = z
  .object({ token: TokenSchema, secret: z.string() })
  .openapi('CreateTokenResponse') satisfies z.ZodType<wire.CreateTokenResponse>;

/** Wire `TokenList` (api/wire.ts). */
export const TokenListSchema = z.object({ tokens: z.array(TokenSchema) }).openapi('TokenList') satisfies z.ZodType<wire.TokenList>;

// --- search, replace, edit, watch ---

const Count = z.number().int();
const EntryTypeSchema = z.enum(['file', 'dir', 'symlink']);

/** Wire `SearchRequest` (api/wire.ts); bounds are checked by the engine. */
export const SearchRequestSchema = z
  .object({
    path: Path.optional(), glob: z.string().optional(), regex: z.string().optional(), flags: z.string().optional(), commit: z.string().optional(),
    limit: Count.optional(), maxBytesPerFile: Count.optional(), timeoutMs: Count.optional(),
  })
  .openapi('SearchRequest') satisfies z.ZodType<wire.SearchRequest>;

/** Wire `SearchResponse` (api/wire.ts). */
export const SearchResponseSchema = z
  .object({
    commit: z.string(),
    files: z.array(z.object({ path: z.string(), type: EntryTypeSchema, size: Bytes })),
    matches: z.array(z.object({ path: z.string(), line: Count, column: Count, text: z.string() })),
    truncated: z.boolean(), timedOut: z.boolean(), skippedBinary: z.array(z.string()), truncatedFiles: z.array(z.string()), filesScanned: Count,
  })
  .openapi('SearchResponse') satisfies z.ZodType<wire.SearchResponse>;

/** Wire `ReplaceRequest` (api/wire.ts). */
export const ReplaceRequestSchema = z
  .object({
    path: Path.optional(), glob: z.string(), regex: z.string(), replacement: z.string().max(65536), flags: z.string().optional(), base: z.string().optional(),
    maxFiles: Count.optional(), maxBytesPerFile: Count.optional(), timeoutMs: Count.optional(), message: z.string().optional(),
  })
  .openapi('ReplaceRequest') satisfies z.ZodType<wire.ReplaceRequest>;

/** Wire `ReplaceResponse` (api/wire.ts). */
export const ReplaceResponseSchema = z
  .object({
    commit: CommitSchema.nullable(),
    files: z.array(z.object({ path: z.string(), replacements: Count })),
    skippedBinary: z.array(z.string()), skippedTooLarge: z.array(z.string()),
  })
  .openapi('ReplaceResponse') satisfies z.ZodType<wire.ReplaceResponse>;

/** Wire `EditRequest` (api/wire.ts). */
export const EditRequestSchema = z
  .object({ path: Path, oldString: z.string(), newString: z.string(), base: z.string().optional(), message: z.string().optional() })
  .openapi('EditRequest') satisfies z.ZodType<wire.EditRequest>;

/** Wire `EditResponse` (api/wire.ts). */
export const EditResponseSchema = z.object({ commit: CommitSchema, path: z.string() }).openapi('EditResponse') satisfies z.ZodType<wire.EditResponse>;

/** Wire `ChangeEvent` (api/wire.ts): the data of each `change` event of the watch stream. */
export const ChangeEventSchema = z
  .object({ commit: z.string(), seq: Count, path: z.string(), kind: z.enum(['added', 'modified', 'deleted']), type: EntryTypeSchema, index: Count, count: Count })
  .openapi('ChangeEvent') satisfies z.ZodType<wire.ChangeEvent>;

/** Wire `ChangesResponse` (api/wire.ts). */
export const ChangesResponseSchema = z
  .object({
    head: z.string(),
    commits: z.array(z.object({ id: z.string(), seq: Count, changes: z.array(z.object({ path: z.string(), kind: z.enum(['added', 'modified', 'deleted']), type: EntryTypeSchema })), truncated: z.boolean() })),
  })
  .openapi('ChangesResponse') satisfies z.ZodType<wire.ChangesResponse>;

// --- URL parameters and queries ---

/** URL parameters of /v1/volumes/{name}/... routes. */
export const VolumeParamsSchema = z.object({
  name: z.string().openapi({ param: { name: 'name', in: 'path' }, example: 'data' }),
});

/** URL parameters of /v1/volumes/{name}/snapshots/{snapshot}. */
export const SnapshotParamsSchema = VolumeParamsSchema.extend({
  snapshot: z.string().openapi({ param: { name: 'snapshot', in: 'path' }, example: 'before-migration' }),
});

/** URL parameters of /v1/tokens/{id}. */
export const TokenParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'tok_0123456789abcdefghij' }),
});

/** URL parameters of /v1/attachments/{id}/... */
export const AttachmentParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'att_0123456789abcdefghij' }),
});

/** "true"/"false" (and "1"/"0") in a query string, as a boolean. */
const QueryBool = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

const QueryInt = (min: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'expected a whole number')
    .transform((s) => Number(s))
    .pipe(z.number().int().min(min))
    .optional();

/** Query of GET /v1/volumes/{name}/attachments. */
export const AttachmentsQuerySchema = z.object({
  all: QueryBool.openapi({ param: { name: 'all', in: 'query' }, description: 'Also released and failed attachments (default: mounted only).', type: 'boolean' }),
});

/** Query of GET /v1/volumes/{name}/commits. */
export const CommitsQuerySchema = z.object({
  limit: QueryInt(1).openapi({ param: { name: 'limit', in: 'query' }, type: 'integer' }),
  before: QueryInt(0).openapi({ param: { name: 'before', in: 'query' }, description: 'Only commits with a seq below this one (from nextBefore).', type: 'integer' }),
});

const PathQuery = z.string().openapi({ param: { name: 'path', in: 'query' }, example: '/dir/file.txt' });
const CommitQuery = z.string().optional().openapi({ param: { name: 'commit', in: 'query' }, description: 'A commit id; the head when absent.' });

/** Query of GET /v1/volumes/{name}/stat (path defaults to "/"). */
export const StatQuerySchema = z.object({ path: PathQuery.default('/'), commit: CommitQuery });

/** Query of GET /v1/volumes/{name}/list (path defaults to "/"). */
export const ListQuerySchema = z.object({
  path: PathQuery.default('/'),
  commit: CommitQuery,
  recursive: QueryBool.openapi({ param: { name: 'recursive', in: 'query' }, type: 'boolean' }),
  limit: QueryInt(1).openapi({ param: { name: 'limit', in: 'query' }, description: 'Entries per page (default 1000, at most 10000).', type: 'integer' }),
  after: z.string().optional().openapi({ param: { name: 'after', in: 'query' }, description: 'The nextCursor of the previous page.' }),
});

/** Query of GET /v1/volumes/{name}/read (path required). */
export const ReadQuerySchema = z.object({ path: PathQuery, commit: CommitQuery });

/** Query of GET /v1/volumes/{name}/watch. */
export const WatchQuerySchema = z.object({
  since: z.string().optional().openapi({ param: { name: 'since', in: 'query' }, description: 'Stream the changes after this commit (else the Last-Event-ID header, else the head).' }),
});

/** Query of GET /v1/volumes/{name}/changes. */
export const ChangesQuerySchema = z.object({
  since: z.string().optional().openapi({ param: { name: 'since', in: 'query' }, description: 'The commits after this one (none when absent: the head).' }),
  limit: QueryInt(1).openapi({ param: { name: 'limit', in: 'query' }, description: 'Commits per answer (default 100, at most 1000).', type: 'integer' }),
});

// --- downloads ---

/** Wire `SignedUrlRequest` (api/wire.ts); the lifetime bound is checked by the signer. */
export const SignedUrlRequestSchema = z
  .object({ path: Path, expiresIn: Bytes.optional(), commit: Ref.optional() })
  .openapi('SignedUrlRequest') satisfies z.ZodType<wire.SignedUrlRequest>;

/** Wire `SignedUrlResponse` (api/wire.ts). */
export const SignedUrlResponseSchema = z
  .object({ url: z.string(), expiresAt: z.string(), commit: z.string() })
  .openapi('SignedUrlResponse') satisfies z.ZodType<wire.SignedUrlResponse>;

/** Query of GET /v1/volumes/{name}/content (path required). */
export const ContentQuerySchema = z.object({ path: PathQuery, commit: CommitQuery });

/** Query of GET /v1/volumes/{name}/archive (path defaults to "/", format to tar.gz). */
export const ArchiveQuerySchema = z.object({
  path: PathQuery.default('/'),
  commit: CommitQuery,
  format: z.enum(['tar', 'tar.gz']).default('tar.gz').openapi({ param: { name: 'format', in: 'query' } }),
  preserveMode: QueryBool.openapi({ param: { name: 'preserveMode', in: 'query', description: 'keep setuid, setgid and sticky bits in entry modes (default: permission bits only)' }, type: 'boolean' }),
});
