/**
 * @module client/download-dir
 * A directory download: one uncompressed tar stream of the directory,
 * extracted under the local root with confinement, masked modes and long
 * paths (the module doc of client/download says how and why).
 */
import type { Stats } from 'node:fs';
import { chmod, mkdir, symlink, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parsePath } from '../common/paths.js';
import { getStream, volumePath } from './content-stream.js';
import {
  localMode,
  type DownloadHost,
  type DownloadOptions,
  type DownloadResult,
  type RefusedEntry,
} from './download-options.js';
import { confinedParent, isTooLong, lstatOrNone, writeAtomically, writeBytesAtomically } from './local-write.js';
import { LongPaths } from './long-paths.js';
import { readTar } from './tar-reader.js';

/** Files of a directory archive up to this size are read whole and written in the background (16 at most: 16 MiB); larger ones stream. */
const SMALL_FILE_BYTES = 1024 * 1024;
/** Small files written at once by a directory download. */
const DIR_CONCURRENCY = 16;

export async function downloadDir(
  host: DownloadHost,
  dir: string,
  root: string,
  total: number,
  options: DownloadOptions,
): Promise<DownloadResult> {
  // One tar stream (uncompressed: loopback and LANs are faster than gzip) instead of a request per file.
  // The modes are masked here whatever the server sends: it may be an older or a hostile one.
  const res = await getStream(host.client, volumePath(host.name, '/archive'), {
    path: dir,
    format: 'tar',
    commit: options.commit,
    preserveMode: options.preserveMode === true ? 'true' : undefined,
  });
  const commit = res.headers.get('x-stowage-commit') ?? '';
  await mkdir(root, { recursive: true, mode: 0o755 });
  const lp = new LongPaths();
  try {
    return await extractInto(res.body, commit, dir, root, total, options, lp);
  } finally {
    lp.close();
  }
}

/** Writes the entries of a directory's tar stream under `root` (see the module doc: confinement, modes, long paths). */
async function extractInto(
  tarStream: Readable,
  commit: string,
  dir: string,
  root: string,
  total: number,
  options: DownloadOptions,
  lp: LongPaths,
): Promise<DownloadResult> {
  const S = (p: string) => lp.short(p);
  const refused: RefusedEntry[] = [];
  const verified = new Set<string>();
  const dirs: Array<{ at: string; mode: number; mtime: number }> = [];
  const links: Array<{ name: string; at: string; target: string }> = [];
  const writes = new Set<Promise<void>>();
  let failure: unknown;
  let done = 0;
  let written = 0;
  const onBytes = (n: number) => {
    done += n;
    options.onProgress?.({ phase: 'download', done, total });
  };

  /** The local path of an archive entry, or undefined (and a refusal) when it would leave root or pass a symlink. */
  const place = async (name: string): Promise<string | undefined> => {
    let segments: string[];
    try {
      // Names are relative to the archived directory; parsePath refuses "", ".", ".." and NUL.
      segments = parsePath(`/${name.replace(/\/+$/, '')}`)
        .slice(1)
        .split('/');
    } catch {
      refused.push({ path: name, reason: 'not a safe relative path' });
      return undefined;
    }
    let why: string | undefined;
    try {
      why = await confinedParent(root, segments, verified, lp);
    } catch (e) {
      if (!isTooLong(e)) throw e;
      why = 'the local path is too long for this system';
    }
    if (why !== undefined) {
      refused.push({ path: `${dir === '/' ? '' : dir}/${segments.join('/')}`, reason: why });
      return undefined;
    }
    return join(root, ...segments);
  };
  const remote = (name: string) => `${dir === '/' ? '' : dir}/${name.replace(/\/+$/, '')}`;

  /** Refuses an entry the local system cannot name (ENAMETOOLONG), or rethrows. */
  const tooLong = (name: string, e: unknown): void => {
    if (!isTooLong(e)) throw e;
    refused.push({ path: remote(name), reason: 'the local path is too long for this system' });
  };

  await readTar(tarStream, async (h, body) => {
    if (failure !== undefined) throw failure;
    if (h.type === 'directory') {
      const at = await place(h.name);
      if (at === undefined) return;
      let existing: Stats | undefined;
      try {
        existing = await lstatOrNone(S(at));
        if (!existing)
          await mkdir(S(at), { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
          });
      } catch (e) {
        return tooLong(h.name, e);
      }
      if (existing && !existing.isDirectory()) {
        refused.push({
          path: remote(h.name),
          reason: `${at} exists and is ${existing.isSymbolicLink() ? 'a symlink' : 'not a directory'}`,
        });
        return;
      }
      verified.add(at);
      dirs.push({ at, mode: localMode(h.mode, options.preserveMode), mtime: h.mtime });
      return;
    }
    if (h.type === 'symlink') {
      // Made last, so no file of this download is ever written below one.
      const at = await place(h.name);
      if (at !== undefined) links.push({ name: h.name, at, target: h.linkname });
      return;
    }
    if (h.type !== 'file') return;
    const at = await place(h.name);
    if (at === undefined) return;
    let short: string;
    try {
      short = S(at);
      if ((await lstatOrNone(short))?.isDirectory()) {
        refused.push({ path: remote(h.name), reason: `${at} is a directory` });
        return;
      }
    } catch (e) {
      return tooLong(h.name, e);
    }
    const meta = { mode: localMode(h.mode, options.preserveMode), mtime: h.mtime };
    if (h.size > SMALL_FILE_BYTES) {
      // Large files stream straight from the archive (the archive waits for them).
      try {
        await writeAtomically(Readable.from(counted(body, onBytes)), short, meta);
      } catch (e) {
        return tooLong(h.name, e);
      }
      written++;
      return;
    }
    // Small files are read whole and written in the background, a bounded number at once.
    const parts: Buffer[] = [];
    for await (const piece of body) parts.push(piece);
    const data = Buffer.concat(parts);
    while (writes.size >= DIR_CONCURRENCY) await Promise.race(writes);
    const w = writeBytesAtomically(data, short, meta)
      .then(
        () => {
          written++;
          onBytes(data.length);
        },
        (e: unknown) => {
          try {
            tooLong(h.name, e);
          } catch {
            failure ??= e;
          }
        },
      )
      .finally(() => writes.delete(w));
    writes.add(w);
  });
  await Promise.all(writes);
  if (failure !== undefined) throw failure;
  for (const l of links) {
    try {
      const existing = await lstatOrNone(S(l.at));
      if (existing?.isDirectory()) {
        refused.push({ path: remote(l.name), reason: `${l.at} is a directory` });
        continue;
      }
      if (existing) await unlink(S(l.at));
      await symlink(l.target, S(l.at));
    } catch (e) {
      tooLong(l.name, e);
    }
  }
  // Modes and mtimes of directories last (deepest first), after their contents stopped changing them.
  for (const d of dirs.reverse()) {
    await chmod(S(d.at), d.mode);
    const t = new Date(d.mtime);
    await utimes(S(d.at), t, t);
  }
  return { kind: 'dir', commit, files: written, bytes: done, refused };
}

async function* counted(body: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const piece of body) {
    onBytes(piece.length);
    yield piece;
  }
}
