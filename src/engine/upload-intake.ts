/**
 * @module engine/upload-intake
 * Decides whether a resumable upload may start, before any byte of it is
 * staged. Vocabulary:
 *
 * - upload metadata: the key/value pairs a tus client sends at creation
 *   (`volume`, `path`, `sha256`, optional `mode` in octal and `mtime` in ms).
 *   Unknown keys (tus clients add `filename`, `filetype`) are ignored.
 * - upload target: the validated metadata plus the volume's id, recorded with
 *   the staged upload so later requests can be matched to their owner.
 *
 * The checks are those of a write, made early: the volume exists for the
 * caller (another tenant's or outside a scoped token is NotFound), the token
 * may write, and the whole upload fits under the volume's cap (413
 * QuotaExceeded naming cap and size). The final write re-checks everything.
 */
import { InvalidArgumentError, QuotaExceededError } from '@stowage/sdk/common/errors.js';
import { authorize } from './authority.js';
import { parsePath, parseVolumeName, type VolumePath } from '@stowage/sdk/common/paths.js';
import { formatSize } from '@stowage/sdk/common/sizes.js';
import type { Actor, VolumeEngine } from './types.js';

/** What a validated upload will write. */
export interface UploadTarget {
  volume: string;
  volumeId: string;
  path: VolumePath;
  /** Bytes of the whole file (the tus Upload-Length). */
  size: number;
  /** SHA-256 (lower-case hex) the whole file must have. */
  sha256: string;
  mode?: number;
  mtime?: number;
}

const SHA256_RE = /^[0-9a-fA-F]{64}$/;

function required(meta: Readonly<Record<string, string | null | undefined>>, key: string): string {
  const v = meta[key];
  if (v === undefined || v === null || v === '')
    throw new InvalidArgumentError(`upload metadata "${key}" is required (send it in Upload-Metadata)`);
  return v;
}

/**
 * Validates upload metadata and length without touching any store.
 *
 * @example
 * parseUploadMetadata({ volume: 'data', path: '/big.bin', sha256: 'ab…' }, 1024);
 */
export function parseUploadMetadata(
  meta: Readonly<Record<string, string | null | undefined>>,
  size: number,
): Omit<UploadTarget, 'volumeId'> {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new InvalidArgumentError('Upload-Length must be a whole number of bytes');
  const volume = parseVolumeName(required(meta, 'volume'));
  const path = parsePath(required(meta, 'path'));
  if (path === '/') throw new InvalidArgumentError('cannot upload onto the volume root: name a file path');
  const sha256 = required(meta, 'sha256');
  if (!SHA256_RE.test(sha256))
    throw new InvalidArgumentError('upload metadata "sha256" must be 64 hex digits (the SHA-256 of the whole file)');
  const out: Omit<UploadTarget, 'volumeId'> = { volume, path, size, sha256: sha256.toLowerCase() };
  const mode = meta.mode;
  if (mode !== undefined && mode !== null && mode !== '') {
    if (!/^[0-7]{1,4}$/.test(mode))
      throw new InvalidArgumentError(
        `upload metadata "mode" must be octal permission bits such as 644, not ${JSON.stringify(mode.slice(0, 20))}`,
      );
    out.mode = parseInt(mode, 8);
  }
  const mtime = meta.mtime;
  if (mtime !== undefined && mtime !== null && mtime !== '') {
    if (!/^\d{1,15}$/.test(mtime))
      throw new InvalidArgumentError('upload metadata "mtime" must be milliseconds since the epoch');
    out.mtime = Number(mtime);
  }
  return out;
}

/**
 * Checks that `actor` may upload `size` bytes as described by `meta`; returns
 * the target to record with the upload.
 *
 * @example
 * const target = await checkUploadTarget(engine, actor, { volume: 'data', path: '/a', sha256 }, 42);
 */
export async function checkUploadTarget(
  engine: VolumeEngine,
  actor: Actor,
  meta: Readonly<Record<string, string | null | undefined>>,
  size: number,
): Promise<UploadTarget> {
  const parsed = parseUploadMetadata(meta, size);
  authorize(actor, 'volume.write');
  // getVolume answers NotFound for other tenants and outside a scoped token, so names do not leak.
  const vol = await engine.getVolume(actor, parsed.volume);
  if (vol.size + size > vol.cap) {
    throw new QuotaExceededError(
      `volume "${vol.name}" is capped at ${formatSize(vol.cap)} (${vol.cap} bytes); uploading ${formatSize(size)} to ${parsed.path} could make it ${formatSize(vol.size + size)} (${vol.size + size} bytes). Free space or raise the cap with: stowage volume resize ${vol.name} SIZE`,
      { details: { cap: vol.cap, size: vol.size + size } },
    );
  }
  return { ...parsed, volumeId: vol.id };
}
