/**
 * @module server/schemas/sandbox-schemas
 * Sandboxes, their execs and their files (wire/sandboxes). Request schemas
 * check shapes only and keep unknown keys of images and volumes, so that the
 * engine (engine/sandbox-requests), which owns the rules, names a wrong field
 * precisely (a `copy` step, an unknown volume option).
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { QueryBool, QueryInt } from './query-schemas.js';

const ImageSpecSchema = z
  .object({
    base: z.enum(['debian', 'busybox']).optional(),
    steps: z
      .array(z.record(z.string(), z.unknown()))
      .optional()
      .openapi({ description: 'Build steps, each with exactly one of aptInstall, runCommands, env.' }),
  })
  .openapi('ImageSpec');

const SandboxVolumeRequestSchema = z
  .union([
    z.string(),
    z.looseObject({ volume: z.string(), readOnly: z.boolean().optional(), subpath: z.string().optional() }),
  ])
  .openapi('SandboxVolumeRequest');

/** Wire `CreateSandboxRequest`. */
export const CreateSandboxRequestSchema = z
  .object({
    image: ImageSpecSchema.optional(),
    volumes: z
      .record(z.string(), SandboxVolumeRequestSchema)
      .optional()
      .openapi({
        description:
          'Mount path -> volume. Paths: absolute, normalised, not /, not overlapping, not under /proc, /dev, /sys, /.stowage; at most 8.',
        example: { '/mnt/data': 'data' },
      }),
    cpu: z.number().optional().openapi({ description: 'CPU cores, 0.1 to the host cores; default 1.' }),
    memoryMib: z.number().optional().openapi({ description: 'Memory limit in MiB, 64-65536; default 1024.' }),
    diskGib: z.number().optional().openapi({ description: 'State disk in GiB, 1-64; default 4.' }),
    env: z.record(z.string(), z.string()).optional(),
    timeout: z.number().optional().openapi({ description: 'Seconds until it is terminated, 1-86400; default 300.' }),
  })
  .openapi('CreateSandboxRequest');

const SandboxStatusSchema = z
  .enum(['starting', 'running', 'terminated', 'failed'])
  .openapi('SandboxStatus') satisfies z.ZodType<wire.SandboxStatus>;

const SandboxVolumeSchema = z
  .object({
    path: z.string(),
    volume: z.string(),
    readOnly: z.boolean(),
    subpath: z.string().optional(),
    attachmentId: z.string(),
  })
  .openapi('SandboxVolume') satisfies z.ZodType<wire.SandboxVolume>;

/** Wire `Sandbox`. */
export const SandboxSchema = z
  .object({
    id: z.string(),
    status: SandboxStatusSchema,
    reason: z.string().nullable(),
    image: ImageSpecSchema,
    volumes: z.array(SandboxVolumeSchema),
    cpu: z.number(),
    memoryMib: z.number(),
    diskGib: z.number(),
    envNames: z.array(z.string()),
    timeout: z.number(),
    host: z.string(),
    createdAt: z.string(),
    expiresAt: z.string(),
    endedAt: z.string().nullable(),
  })
  .openapi('Sandbox');

/** Wire `SandboxList`. */
export const SandboxListSchema = z.object({ sandboxes: z.array(SandboxSchema) }).openapi('SandboxList');

/** Wire `ExecRequest`. */
export const ExecRequestSchema = z
  .object({
    argv: z.array(z.string()).optional(),
    command: z.string().optional(),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    background: z.boolean().optional(),
    timeout: z.number().optional().openapi({ description: 'Seconds, 0 for none; default 600 (none when background).' }),
    stdin: z.boolean().optional(),
    pty: z
      .union([z.boolean(), z.object({ rows: z.number(), cols: z.number() })])
      .optional()
      .openapi({ description: 'Run on a pseudo-terminal (true: 24x80); its output arrives as stdout.' }),
  })
  .openapi('ExecRequest') satisfies z.ZodType<wire.ExecRequest>;

/** Wire `Exec`. */
export const ExecSchema = z
  .object({
    id: z.string(),
    sandboxId: z.string(),
    argv: z.array(z.string()),
    cwd: z.string().optional(),
    background: z.boolean(),
    pty: z.boolean(),
    timeout: z.number().optional(),
    status: z.enum(['running', 'exited', 'failed']),
    exitCode: z.number().optional(),
    signal: z.string().optional(),
    timedOut: z.boolean().optional(),
    oomKilled: z.boolean().optional(),
    error: z.string().optional(),
    startedAt: z.string(),
    endedAt: z.string().optional(),
    stdoutBytes: z.number(),
    stderrBytes: z.number(),
    dropped: z.object({ stdout: z.number(), stderr: z.number() }),
  })
  .openapi('Exec') satisfies z.ZodType<wire.Exec>;

/** Wire `ExecList`. */
export const ExecListSchema = z.object({ execs: z.array(ExecSchema) }).openapi('ExecList');

/** Wire `SignalExecRequest`. */
export const SignalExecRequestSchema = z
  .object({ signal: z.string().openapi({ example: 'SIGTERM' }) })
  .openapi('SignalExecRequest') satisfies z.ZodType<wire.SignalExecRequest>;

/** Wire `ResizeExecRequest`. */
export const ResizeExecRequestSchema = z
  .object({ rows: z.number(), cols: z.number() })
  .openapi('ResizeExecRequest') satisfies z.ZodType<wire.ResizeExecRequest>;

/** Wire `SandboxFileInfo`. */
export const SandboxFileInfoSchema = z
  .object({
    name: z.string(),
    type: z.enum(['file', 'directory', 'symlink', 'other']),
    size: z.number(),
    mode: z.number(),
    mtime: z.string(),
    uid: z.number(),
    gid: z.number(),
  })
  .openapi('SandboxFileInfo') satisfies z.ZodType<wire.SandboxFileInfo>;

/** Wire `SandboxFileList`. */
export const SandboxFileListSchema = z
  .object({ entries: z.array(SandboxFileInfoSchema), truncated: z.boolean() })
  .openapi('SandboxFileList') satisfies z.ZodType<wire.SandboxFileList>;

/** Wire `SandboxMkdirRequest`. */
export const SandboxMkdirRequestSchema = z
  .object({ path: z.string(), parents: z.boolean().optional(), mode: z.number().optional() })
  .openapi('SandboxMkdirRequest') satisfies z.ZodType<wire.SandboxMkdirRequest>;

/** URL parameters of /v1/sandboxes/{id}/... */
export const SandboxParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'sb_0123456789abcdefghij' }),
});

/** URL parameters of /v1/sandboxes/{id}/execs/{execId}/... */
export const ExecParamsSchema = SandboxParamsSchema.extend({
  execId: z.string().openapi({ param: { name: 'execId', in: 'path' }, example: 'e1' }),
});

/** Query of GET /v1/sandboxes. */
export const SandboxesQuerySchema = z.object({
  all: QueryBool.openapi({
    param: { name: 'all', in: 'query' },
    description: 'Also terminated and failed sandboxes (default: starting and running only).',
    type: 'boolean',
  }),
});

/** Query of GET .../output: the byte offsets to start from. */
export const OutputQuerySchema = z.object({
  stdout: QueryInt(0).openapi({ param: { name: 'stdout', in: 'query' }, type: 'integer', description: 'Default 0.' }),
  stderr: QueryInt(0).openapi({ param: { name: 'stderr', in: 'query' }, type: 'integer', description: 'Default 0.' }),
});

/** Query of POST .../stdin. */
export const StdinQuerySchema = z.object({
  end: QueryBool.openapi({
    param: { name: 'end', in: 'query' },
    description: 'Close stdin after these bytes.',
    type: 'boolean',
  }),
});

const FilePath = z.string().openapi({ param: { name: 'path', in: 'query' }, example: '/work/notes.txt' });

/** Query of the file routes that name one path. */
export const FilePathQuerySchema = z.object({ path: FilePath });

/** Query of PUT .../files. */
export const WriteFileQuerySchema = z.object({
  path: FilePath,
  mode: z
    .string()
    .regex(/^(0o)?[0-7]{1,4}$/, 'an octal mode such as 644 or 0o644')
    .optional()
    .openapi({ param: { name: 'mode', in: 'query' }, description: 'Octal permission bits; default 644.' }),
  createParents: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .openapi({ param: { name: 'createParents', in: 'query' }, description: 'Default true.' }),
});

/** Query of DELETE .../files. */
export const RemoveFileQuerySchema = z.object({
  path: FilePath,
  recursive: QueryBool.openapi({ param: { name: 'recursive', in: 'query' }, type: 'boolean' }),
});
