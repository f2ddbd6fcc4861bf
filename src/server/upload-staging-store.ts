/**
 * @module server/upload-staging-store
 * The tus file store of resumable uploads, with a full disk reported as
 * such. The tus server answers a failed write with its generic 500
 * ("something went wrong with that request") and @tus/file-store leaves an
 * empty staging file behind when creation fails half-way; here ENOSPC and
 * EDQUOT become the InsufficientStorage answer (507, "disk full: ...")
 * through `diskFullAnswer`, and a creation that could not complete removes
 * what it made. A PATCH cut by a full disk keeps
 * the bytes it wrote (tus offsets are what is on disk): the upload resumes
 * from there once space is freed.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '@tus/file-store';
import { diskFullOr, InsufficientStorageError } from '@stowage/sdk/common/errors.js';
import { toErrorResponse } from './error-map.js';

type TusUpload = Parameters<FileStore['create']>[0];

/**
 * `err`, or the `{ status_code, body }` tus answer of a full disk when it is
 * one. Also the tus server's onResponseError: a PATCH cut by a full disk
 * rejects with the raw ENOSPC of the staging file's stream.
 */
export function diskFullAnswer(err: unknown, what: string): unknown {
  const e = diskFullOr(err, what);
  if (!(e instanceof InsufficientStorageError)) return err;
  const { status, body } = toErrorResponse(e);
  return { status_code: status, body: JSON.stringify(body) };
}

/** FileStore whose disk-full failures are 507 InsufficientStorage (see module doc). */
export class StagingFileStore extends FileStore {
  override async create(file: TusUpload): Promise<TusUpload> {
    try {
      return await super.create(file);
    } catch (err) {
      // The empty staging file may exist without its sidecar, and then nothing would ever sweep it.
      await rm(join(this.directory, file.id), { force: true }).catch(() => undefined);
      await rm(join(this.directory, `${file.id}.json`), { force: true }).catch(() => undefined);
      throw diskFullAnswer(err, 'creating the upload');
    }
  }
}
