/**
 * @module server/finished-uploads
 * The records of finished resumable uploads: a client killed after sending
 * its last byte never reads the answer naming the commit, so the commit is
 * kept as `<directory>/<id>.json` for a later HEAD of the upload, and swept
 * after the upload lifetime.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What is kept of a finished upload: its owner metadata, its length and the commit it made. */
export interface FinishedUpload {
  metadata: Record<string, string | null>;
  size: number;
  commit: string;
  finishedAt: number;
}

/** One JSON file per finished upload id, written whole through a rename. */
export class FinishedUploads {
  constructor(readonly directory: string) {}

  #file(id: string): string {
    return join(this.directory, `${id}.json`);
  }

  /** The record of upload `id`, or undefined when there is none (yet). */
  async read(id: string): Promise<FinishedUpload | undefined> {
    return readFile(this.#file(id), 'utf8').then(
      (t) => JSON.parse(t) as FinishedUpload,
      () => undefined,
    );
  }

  /** Records upload `id`; a reader sees the old state or the whole record, never a part. */
  async write(id: string, record: FinishedUpload): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    await writeFile(`${this.#file(id)}.tmp`, JSON.stringify(record));
    await rename(`${this.#file(id)}.tmp`, this.#file(id));
  }

  /** Deletes records older than `maxAgeMs`; returns how many. */
  async sweep(maxAgeMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const st = await stat(join(this.directory, name)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > maxAgeMs) {
        await rm(join(this.directory, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}
