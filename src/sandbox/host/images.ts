/**
 * @module sandbox/host/images
 * The host's image cache. An image is built once per content address into
 * `<dataDir>/images/<id>/` — `root/` (the root file system, ids shifted into
 * the subordinate range, the read-only lower layer of every sandbox started
 * from it), `image.json` (description, environment, timings) and
 * `build.log` — and reused by every later request for the same description.
 *
 * A build happens in `images/.build-<id>-<random>/` and is renamed into
 * place when complete, so a visible image is always whole. A failed build
 * removes its directory and keeps only its log, `images/<id>.failed.log`.
 * Builders of one id take `images/.locks/<id>.lock` (flock: across
 * processes, released by a crash), so concurrent requests build it once;
 * inside one process they share one promise. An image with steps starts from
 * a copy of its base image (itself cached), so only the first image of a
 * host pays for mmdebstrap.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireFileLock, tryFileLock } from '../../common/file-lock.js';
import { buildBase, runSteps, BASE_ENV } from './image-builder.js';
import { runOk } from './host-command.js';
import {
  IMAGE_FORMAT,
  parseImageId,
  resolveImage,
  type CheckedImageSpec,
  type ImageId,
  type ImageSpec,
} from './image-spec.js';

/** Folder of the image cache under a data dir. */
export const IMAGES_DIR = 'images';
const BUILD_PREFIX = '.build-';
const LOCKS = '.locks';

/** A built image. */
export interface Image {
  id: ImageId;
  /** `<dataDir>/images/<id>`. */
  dir: string;
  /** The root file system (ids shifted): a sandbox's lower layer, never written. */
  root: string;
  spec: CheckedImageSpec;
  /** Environment of the image's processes (the base's plus its env steps). */
  env: Record<string, string>;
  builtAt: string;
  /** Whole build, base shift and steps included (the base's own time when copied from its cached image). */
  buildMs: number;
  /** The uid shift of the base, when this build made the base. */
  shiftMs?: number;
}

/** Options of a store. */
export interface ImageStoreOptions {
  /** The data dir; images live in `<dataDir>/images`. */
  dataDir: string;
  /** The apt sources file (default: the host's). */
  aptSources?: string;
  /** Longest one base build or step may run (default 30 minutes). */
  stepTimeoutMs?: number;
}

/** Options of one request. */
export interface EnsureOptions {
  /** The build log as it comes (nothing on a cache hit). */
  onLog?: (text: string) => void;
  /** Directory copy steps read from. */
  contextDir?: string;
}

/** The host's image cache (see the module comment). */
export class ImageStore {
  /** `<dataDir>/images`. */
  readonly dir: string;
  private readonly building = new Map<string, Promise<{ image: Image; built: boolean }>>();

  constructor(private readonly opts: ImageStoreOptions) {
    this.dir = join(opts.dataDir, IMAGES_DIR);
  }

  /** The built image of `id`, or undefined. */
  async get(id: string): Promise<Image | undefined> {
    const dir = join(this.dir, parseImageId(id));
    try {
      const meta = JSON.parse(await readFile(join(dir, 'image.json'), 'utf8')) as Omit<Image, 'dir' | 'root'>;
      return { ...meta, dir, root: join(dir, 'root') };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** The built image of `spec` if this host has it (never builds). */
  async find(spec: ImageSpec): Promise<Image | undefined> {
    return this.get((await resolveImage(spec)).id);
  }

  /** Where the log of the last failed build of `id` is kept. */
  failedLogPath(id: ImageId): string {
    return join(this.dir, `${id}.failed.log`);
  }

  /** The image of `spec`, built first if this host does not have it yet. */
  async ensure(spec: ImageSpec, opts: EnsureOptions = {}): Promise<{ image: Image; cached: boolean }> {
    const resolved = await resolveImage(spec, opts.contextDir);
    const have = await this.get(resolved.id);
    if (have) return { image: have, cached: true };
    let pending = this.building.get(resolved.id);
    if (!pending) {
      pending = this.lockedBuild(resolved, opts).finally(() => this.building.delete(resolved.id));
      this.building.set(resolved.id, pending);
    }
    const { image, built } = await pending;
    return { image, cached: !built };
  }

  private async lockedBuild(
    resolved: Awaited<ReturnType<typeof resolveImage>>,
    opts: EnsureOptions,
  ): Promise<{ image: Image; built: boolean }> {
    await mkdir(join(this.dir, LOCKS), { recursive: true, mode: 0o700 });
    const lock = await acquireFileLock(join(this.dir, LOCKS, `${resolved.id}.lock`));
    try {
      // Another process may have built it while this one waited.
      const have = await this.get(resolved.id);
      if (have) return { image: have, built: false };
      await this.removeStaleBuilds(resolved.id);
      return { image: await this.build(resolved, opts), built: true };
    } finally {
      lock.release();
    }
  }

  private async build(resolved: Awaited<ReturnType<typeof resolveImage>>, opts: EnsureOptions): Promise<Image> {
    const { id, spec, copySources } = resolved;
    const tmp = join(this.dir, `${BUILD_PREFIX}${id}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { mode: 0o700 });
    const logFile = createWriteStream(join(tmp, 'build.log'));
    const log = (text: string) => {
      logFile.write(text);
      opts.onLog?.(text);
    };
    const root = join(tmp, 'root');
    const t0 = performance.now();
    const stepTimeoutMs = this.opts.stepTimeoutMs ?? 30 * 60_000;
    const buildOpts = { log, stepTimeoutMs, ...(this.opts.aptSources ? { aptSources: this.opts.aptSources } : {}) };
    try {
      log(`==> image ${id}: ${JSON.stringify(spec)}\n`);
      let shiftMs: number | undefined;
      let env: Record<string, string> = { ...BASE_ENV };
      if (spec.steps.length === 0) {
        shiftMs = (await buildBase(spec.base, root, buildOpts)).shiftMs;
      } else {
        const { image: base, cached } = await this.ensure({ base: spec.base, steps: [] }, { onLog: log });
        log(`==> from base image ${base.id}${cached ? ' (cached)' : ''}\n`);
        // Ownership, modes and hard links kept; reflinks where the file system has them.
        await runOk(['cp', '-a', '--reflink=auto', '--', base.root, root], 'copying the base image');
        env = await runSteps(spec.base, root, spec.steps, copySources, buildOpts);
      }
      const image: Image = {
        id,
        dir: join(this.dir, id),
        root: join(this.dir, id, 'root'),
        spec,
        env,
        builtAt: new Date().toISOString(),
        buildMs: Math.round(performance.now() - t0),
        ...(shiftMs === undefined ? {} : { shiftMs }),
      };
      const { dir: _d, root: _r, ...meta } = image;
      await writeFile(join(tmp, 'image.json'), `${JSON.stringify({ format: IMAGE_FORMAT, ...meta }, null, 2)}\n`);
      log(`==> built image ${id} in ${image.buildMs} ms\n`);
      await new Promise<void>((r) => logFile.end(r));
      await rename(tmp, image.dir);
      await rm(this.failedLogPath(id), { force: true });
      return image;
    } catch (e) {
      log(`==> build failed: ${(e as Error).message}\n`);
      await new Promise<void>((r) => logFile.end(r));
      await rename(join(tmp, 'build.log'), this.failedLogPath(id)).catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
      if (e instanceof Error && 'code' in e && typeof e.code === 'string' && !('errno' in e)) {
        e.message = `${e.message}\nfull build log: ${this.failedLogPath(id)}`;
      }
      throw e;
    }
  }

  /** Removes the build directories of `id` left by a crashed builder (the caller holds the id's lock). */
  private async removeStaleBuilds(id: ImageId): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (name.startsWith(`${BUILD_PREFIX}${id}-`)) await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  /** Removes the build directories no live builder holds (a crashed daemon's); returns their paths. */
  async sweepBuilds(): Promise<string[]> {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (!name.startsWith(BUILD_PREFIX)) continue;
      const id = name.slice(BUILD_PREFIX.length).split('-')[0]!;
      // Only directories this store names; anything else under images/ is not ours to remove.
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      await mkdir(join(this.dir, LOCKS), { recursive: true, mode: 0o700 });
      const lock = await tryFileLock(join(this.dir, LOCKS, `${parseImageId(id)}.lock`));
      if (!lock) continue;
      try {
        await rm(join(this.dir, name), { recursive: true, force: true });
        removed.push(join(this.dir, name));
      } finally {
        lock.release();
      }
    }
    return removed;
  }
}
