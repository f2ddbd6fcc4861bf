/**
 * @module client/upload-resumable
 * A resumable file upload over tus (`/v1/uploads`): the file is hashed
 * first (the server refuses content that does not match), and the upload
 * URL is kept in a state file keyed by a fingerprint of the upload, so the
 * same upload run again after a crash continues from the server's offset.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// tus-js-client is loaded only by resumable uploads: it is a third of every CLI command's start-up time.
import type { DetailedError as TusDetailedError, Upload as TusUpload, PreviousUpload, UrlStorage } from 'tus-js-client';
import { InternalError, InvalidArgumentError, UnavailableError, type StowageError } from '../common/errors.js';
import { MiB } from '../common/sizes.js';
import type { ProgressListener } from './commit-writer.js';
import { errorFromResponse, networkReason } from './http-client.js';
import { localError } from './local-tree.js';
import type { UploadHost, UploadOptions, UploadResult } from './upload-options.js';

/** The directory holding client state: option, $STOWAGE_STATE_DIR, or ~/.stowage-client. */
export function stateDirOf(option?: string): string {
  const env = process.env.STOWAGE_STATE_DIR;
  return option ?? (env !== undefined && env !== '' ? env : join(homedir(), '.stowage-client'));
}

/**
 * tus URL storage as one small JSON file per fingerprint under
 * `<stateDir>/uploads/`, so a later process finds the upload to resume.
 */
export class FileUrlStore implements UrlStorage {
  constructor(readonly directory: string) {}

  #file(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new InvalidArgumentError('bad upload state key');
    return join(this.directory, `${key}.json`);
  }

  async findAllUploads(): Promise<PreviousUpload[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return [];
    }
    const all = await Promise.all(
      names.filter((n) => /^[0-9a-f]{64}\.json$/.test(n)).map((n) => this.findUploadsByFingerprint(n.slice(0, 64))),
    );
    return all.flat();
  }

  async findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]> {
    try {
      const saved = JSON.parse(await readFile(this.#file(fingerprint), 'utf8')) as PreviousUpload;
      return [{ ...saved, urlStorageKey: fingerprint }];
    } catch {
      return [];
    }
  }

  async removeUpload(urlStorageKey: string): Promise<void> {
    await rm(this.#file(urlStorageKey), { force: true });
  }

  async addUpload(fingerprint: string, upload: PreviousUpload): Promise<string> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    await writeFile(this.#file(fingerprint), JSON.stringify(upload), { mode: 0o600 });
    return fingerprint;
  }
}

async function sha256OfFile(path: string, size: number, onProgress?: ProgressListener): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  try {
    for await (const piece of createReadStream(path)) {
      hash.update(piece as Buffer);
      done += (piece as Buffer).length;
      onProgress?.({ phase: 'hash', done, total: size });
    }
  } catch (e) {
    throw localError(e, path);
  }
  return hash.digest('hex');
}

/** The key of a resumable upload: the same command on the same unchanged file finds the same upload. */
export function uploadFingerprint(parts: {
  url: string;
  volume: string;
  remotePath: string;
  localPath: string;
  size: number;
  mtimeMs: number;
}): string {
  return createHash('sha256')
    .update(
      JSON.stringify([parts.url, parts.volume, parts.remotePath, resolve(parts.localPath), parts.size, parts.mtimeMs]),
    )
    .digest('hex');
}

function tusFailure(err: unknown, url: string, DetailedError: typeof TusDetailedError): StowageError {
  if (err instanceof DetailedError && err.originalResponse) {
    return errorFromResponse(
      err.originalResponse.getStatus(),
      err.originalResponse.getBody() ?? '',
      'resumable upload',
    );
  }
  const cause = err instanceof DetailedError && err.causingError ? err.causingError : err;
  return new UnavailableError(`resumable upload to ${url} failed: ${networkReason(cause)}`, { cause: err });
}

export async function uploadResumable(
  vol: UploadHost,
  local: string,
  remote: string,
  file: { size: number; mtimeMs: number; mode: number },
  options: UploadOptions,
): Promise<UploadResult> {
  const client = vol.client;
  const sha256 = await sha256OfFile(local, file.size, options.onProgress);
  const fingerprint = uploadFingerprint({
    url: client.url,
    volume: vol.name,
    remotePath: remote,
    localPath: local,
    size: file.size,
    mtimeMs: file.mtimeMs,
  });
  const urlStorage = new FileUrlStore(join(stateDirOf(options.stateDir), 'uploads'));
  const rate = options.limitRate;
  let firstOffset: number | undefined;
  let commit: string | undefined;
  let started = 0;

  const tus = await import('tus-js-client');
  const upload = await new Promise<TusUpload>((resolvePromise, reject) => {
    const u: TusUpload = new tus.Upload(createReadStream(local), {
      endpoint: `${client.url}/v1/uploads`,
      headers: client.authHeaders(),
      metadata: {
        volume: vol.name,
        path: remote,
        sha256,
        mode: (options.mode ?? file.mode).toString(8),
        mtime: String(file.mtimeMs),
      },
      uploadSize: file.size,
      // One streaming PATCH is fastest; a rate cap needs pieces to pace.
      ...(rate !== undefined ? { chunkSize: Math.max(64 * 1024, Math.min(8 * MiB, Math.floor(rate / 8))) } : {}),
      retryDelays: [0, 1000, 3000, 5000],
      fingerprint: async () => fingerprint,
      urlStorage,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onBeforeRequest: async (req) => {
        if (req.getMethod() !== 'PATCH') return;
        const offset = Number(req.getHeader('Upload-Offset') ?? 0);
        if (firstOffset === undefined) {
          firstOffset = offset;
          started = Date.now();
        }
        if (rate !== undefined) {
          const due = started + ((offset - firstOffset) / rate) * 1000;
          if (due > Date.now()) await sleep(due - Date.now());
        }
      },
      onAfterResponse: (_req, res) => {
        const c = res.getHeader(COMMIT_HEADER);
        if (c) commit = c;
      },
      onProgress: (sent, total) => options.onProgress?.({ phase: 'upload', done: sent, total }),
      onSuccess: () => resolvePromise(u),
      onError: (err) => reject(err),
    });
    u.findPreviousUploads()
      .then((previous) => {
        if (previous[0]) u.resumeFromPreviousUpload(previous[0]);
        u.start();
      })
      .catch(reject);
  }).catch(async (err: unknown) => {
    const e = tusFailure(err, client.url, tus.DetailedError);
    // A refused upload (4xx) is gone on the server: forget it, so the next run starts afresh.
    if (e.code !== 'Unavailable') await urlStorage.removeUpload(fingerprint).catch(() => undefined);
    if (e.code === 'InvalidArgument' && /SHA-256/.test(e.message)) {
      throw new InvalidArgumentError(
        `${local} changed since its upload started, so the server refused the result (${e.message}); run the upload again to start afresh`,
        { cause: e },
      );
    }
    throw e;
  });
  void upload;
  if (commit === undefined) throw new InternalError('the server finished the upload without naming its commit');
  await vol.refresh();
  const from = firstOffset ?? file.size;
  return {
    kind: 'file',
    path: remote,
    commit,
    files: 1,
    directories: 0,
    symlinks: 0,
    bytes: file.size,
    sentBytes: file.size - from,
    resumable: true,
    resumedFrom: from,
    skipped: [],
  };
}

/** Response header naming the commit a completed tus upload made (see server/routes/uploads-routes). */
const COMMIT_HEADER = 'Stowage-Commit';
