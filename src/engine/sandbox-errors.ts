/**
 * @module engine/sandbox-errors
 * The one place where what a sandbox runtime throws becomes a Stowage
 * error. The agent inside a sandbox reports file errors with an errno-like
 * `code` (ENOENT, EISDIR, ...): each becomes the error class a caller can act
 * on, with the path and the sandbox in the message. Stowage errors pass as
 * they are; anything else stays an unexpected error (500).
 */
import {
  AlreadyExistsError,
  ConflictError,
  ForbiddenError,
  InsufficientStorageError,
  InvalidArgumentError,
  isStowageError,
  NotFoundError,
  PayloadTooLargeError,
  ReadOnlyError,
  type StowageError,
} from '@stowage/sdk/common/errors.js';

type ErrorClass = new (message: string, options?: { cause?: unknown }) => StowageError;

/** errno code -> the error class and what it means, said to the caller. */
const ERRNO: Record<string, [ErrorClass, string]> = {
  ENOENT: [NotFoundError, 'no such file or directory'],
  EISDIR: [InvalidArgumentError, 'is a directory'],
  ENOTDIR: [InvalidArgumentError, 'a component of the path is not a directory'],
  EEXIST: [AlreadyExistsError, 'already exists'],
  ENOTEMPTY: [ConflictError, 'directory not empty (remove it with recursive=true)'],
  EACCES: [ForbiddenError, 'permission denied inside the sandbox'],
  EPERM: [ForbiddenError, 'operation not permitted inside the sandbox'],
  EROFS: [ReadOnlyError, 'read-only file system (a read-only volume?)'],
  ENOSPC: [InsufficientStorageError, "no space left on the sandbox's disk"],
  EDQUOT: [InsufficientStorageError, "the sandbox's disk quota is exhausted"],
  EFBIG: [PayloadTooLargeError, 'file too large'],
  ENAMETOOLONG: [InvalidArgumentError, 'name too long'],
  ELOOP: [InvalidArgumentError, 'too many levels of symbolic links'],
  EINVAL: [InvalidArgumentError, 'invalid argument'],
  EBUSY: [ConflictError, 'busy (a mount point?)'],
  EXDEV: [InvalidArgumentError, 'crosses a mount (a volume) boundary'],
};

/**
 * The Stowage error for what the runtime threw while working on `path`
 * (when there is one) in sandbox `id`.
 *
 * @example
 * try { await runtime.stat(id, path) } catch (err) { throw runtimeError(err, id, path) }
 */
export function runtimeError(err: unknown, id: string, path?: string): unknown {
  if (isStowageError(err)) return err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const known = typeof code === 'string' ? ERRNO[code] : undefined;
  if (!known) return err;
  const [Class, meaning] = known;
  return new Class(`${path !== undefined ? `${path}: ` : ''}${meaning} (${code} in sandbox ${id})`, { cause: err });
}
