/**
 * @module sandbox/host/image-spec
 * What an image is: a base plus ordered build steps, and its content address.
 *
 * - base `debian`: Debian bookworm minbase plus python3 and ca-certificates,
 *   made by mmdebstrap from the host's apt mirror (the default image);
 *   `busybox`: a static busybox and nothing else (a few MB, built in
 *   seconds: the tests' small image).
 * - steps, in order: `aptInstall` (Debian packages), `runCommands` (each with
 *   /bin/sh -c), `env` (set for later steps and recorded for the sandbox),
 *   `copy` (a file or directory of the build context into the image).
 *
 * The id is the SHA-256 of the canonical JSON (sorted keys) of a version tag,
 * the base and the steps, a copy step standing for the digest of what it
 * copies: the same description always names the same image, a changed
 * context file names another. The mirror is not part of the id: an image
 * built from another mirror of the same Debian release is the same image.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { isAbsolute, join, normalize, posix, relative, sep } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';

declare const brand: unique symbol;
/** An image's content address: 64 hex characters. */
export type ImageId = string & { readonly [brand]: 'ImageId' };

/** Bumped when the meaning of a description changes (build procedure, layout): old images are then rebuilt. */
export const IMAGE_FORMAT = 'stowage-image:v3';
const HEX64 = /^[0-9a-f]{64}$/;

/** An image id parsed from untrusted text (a path segment, a request). */
export function parseImageId(text: string): ImageId {
  if (!HEX64.test(text))
    throw new InvalidArgumentError(
      `not an image id: ${JSON.stringify(text.slice(0, 80))} (expected 64 hex characters)`,
    );
  return text as ImageId;
}

// Debian package names (policy 5.6.1), optionally with an architecture and a version; never an option.
const packageName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$/,
    'a Debian package name such as python3 or curl=7.88.1-10',
  );
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name (letters, digits, _)')
  .max(256);
const noNul = (what: string) => z.string().refine((s) => !s.includes('\0'), `${what} must not contain NUL`);
const imagePath = z
  .string()
  .max(4096)
  .refine(
    (p) => p.startsWith('/') && posix.normalize(p) === p && p !== '/' && !p.endsWith('/'),
    'an absolute, normalised path inside the image other than /',
  );
const contextPath = z
  .string()
  .min(1)
  .max(4096)
  .refine(
    (p) => !isAbsolute(p) && !p.includes('\0') && normalize(p) === p && p !== '..' && !p.startsWith(`..${sep}`),
    'a normalised path relative to the build context, not leaving it',
  );

/** Each step is an object with exactly one of these keys; its schema by key gives errors that name the field. */
const STEP_SCHEMAS = {
  aptInstall: z.object({ aptInstall: z.array(packageName).min(1).max(500) }).strict(),
  runCommands: z
    .object({
      runCommands: z
        .array(noNul('a command').pipe(z.string().min(1).max(65536)))
        .min(1)
        .max(100),
    })
    .strict(),
  env: z.object({ env: z.record(envName, noNul('an environment value').pipe(z.string().max(65536))) }).strict(),
  copy: z.object({ copy: z.object({ from: contextPath, to: imagePath }).strict() }).strict(),
} as const;
const stepSchema = z.union([STEP_SCHEMAS.aptInstall, STEP_SCHEMAS.runCommands, STEP_SCHEMAS.env, STEP_SCHEMAS.copy]);

/** The description of an image. */
export const imageSpecSchema = z
  .object({
    base: z.enum(['debian', 'busybox']),
    steps: z.array(stepSchema).max(100).default([]),
  })
  .strict();

/** One build step. */
export type ImageStep = z.infer<typeof stepSchema>;
/** An image description as callers write it. */
export type ImageSpec = z.input<typeof imageSpecSchema>;
/** A checked image description. */
export type CheckedImageSpec = z.output<typeof imageSpecSchema>;

/** The default image: the Debian base with no steps. */
export const DEFAULT_IMAGE: ImageSpec = { base: 'debian', steps: [] };

/** Checks an untrusted description; the error names the offending field. */
export function checkImageSpec(spec: unknown): CheckedImageSpec {
  const fail = (issue: z.core.$ZodIssue, prefix: (string | number)[] = []) => {
    const path = [...prefix, ...issue.path].join('.');
    throw new InvalidArgumentError(`invalid image description at ${path || '(root)'}: ${issue.message}`);
  };
  // Steps first, each against the schema its key names, so an error says which field is wrong.
  const steps = (spec as { steps?: unknown } | null)?.steps;
  if (Array.isArray(steps)) {
    for (const [i, step] of steps.slice(0, 101).entries()) {
      const keys = step !== null && typeof step === 'object' ? Object.keys(step) : [];
      const key = keys.length === 1 ? (keys[0] as keyof typeof STEP_SCHEMAS) : undefined;
      if (key === undefined || !(key in STEP_SCHEMAS)) {
        throw new InvalidArgumentError(
          `invalid image description at steps.${i}: a step is an object with exactly one of ${Object.keys(STEP_SCHEMAS).join(', ')}`,
        );
      }
      const r = STEP_SCHEMAS[key].safeParse(step);
      if (!r.success) fail(r.error.issues[0]!, ['steps', i]);
    }
  }
  const r = imageSpecSchema.safeParse(spec);
  if (!r.success) fail(r.error.issues[0]!);
  // apt runs with the host's network (the mirror is reachable only through it). After a step that ran the
  // tenant's own commands or files, apt's binaries, configuration and hooks could be theirs: that code would
  // then run with the host's network. So apt steps come first.
  const firstOwn = r.data!.steps.findIndex((s) => 'runCommands' in s || 'copy' in s);
  const lateApt = r.data!.steps.findIndex((s, i) => 'aptInstall' in s && firstOwn !== -1 && i > firstOwn);
  if (lateApt !== -1)
    throw new InvalidArgumentError(
      `invalid image description at steps.${lateApt}: aptInstall must come before any runCommands or copy step (apt runs with the host's network, and must not run code an earlier step could have changed); move it up`,
    );
  return r.data!;
}

/** JSON with object keys sorted at every level: one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The host path a copy step reads: `from` under `contextDir`, refused when
 * the context is missing or a symlink takes it outside.
 */
export async function copySource(contextDir: string | undefined, from: string): Promise<string> {
  if (contextDir === undefined)
    throw new InvalidArgumentError(`the copy step of ${from} needs a build context directory`);
  const ctx = await realpath(contextDir);
  const real = await realpath(join(ctx, from)).catch(() => {
    throw new InvalidArgumentError(`copy source ${from} does not exist in the build context`);
  });
  const rel = relative(ctx, real);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    throw new InvalidArgumentError(`copy source ${from} leads out of the build context`);
  return real;
}

/** SHA-256 over a file or directory tree: names, types, permission bits, contents, symlink targets (not owners or times). */
export async function treeDigest(path: string): Promise<string> {
  const h = createHash('sha256');
  const visit = async (p: string, rel: string): Promise<void> => {
    const st = await lstat(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      h.update(`d ${rel} ${mode}\0`);
      for (const name of (await readdir(p)).sort()) await visit(join(p, name), `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      h.update(`l ${rel} ${await readlink(p)}\0`);
    } else if (st.isFile()) {
      h.update(`f ${rel} ${mode} ${st.size}\0`);
      h.update(await readFile(p));
    } else {
      throw new InvalidArgumentError(
        `copy source ${rel} is a special file; only files, directories and symlinks can be copied`,
      );
    }
  };
  await visit(path, '.');
  return h.digest('hex');
}

/** An image description resolved for building: its id and, per copy step, the host source and its digest. */
export interface ResolvedImage {
  id: ImageId;
  spec: CheckedImageSpec;
  /** Host path of each step's copy source (undefined for other steps). */
  copySources: (string | undefined)[];
}

/** Checks `spec`, resolves its copy sources and computes its id. */
export async function resolveImage(spec: unknown, contextDir?: string): Promise<ResolvedImage> {
  const checked = checkImageSpec(spec);
  const copySources: (string | undefined)[] = [];
  const hashed: unknown[] = [];
  for (const step of checked.steps) {
    if ('copy' in step) {
      const source = await copySource(contextDir, step.copy.from);
      copySources.push(source);
      hashed.push({ copy: { to: step.copy.to, digest: await treeDigest(source) } });
    } else {
      copySources.push(undefined);
      hashed.push(step);
    }
  }
  const id = createHash('sha256')
    .update(canonicalJson({ format: IMAGE_FORMAT, base: checked.base, steps: hashed }))
    .digest('hex') as ImageId;
  return { id, spec: checked, copySources };
}
