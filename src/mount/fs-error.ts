/**
 * @module mount/fs-error
 * A failure the kernel should see as an errno. The agent's file system code
 * throws these; the FUSE layer turns them into negative errno answers, and
 * anything else into EIO (after logging it), so a bug never hangs a caller.
 */
import { constants } from 'node:os';

export type Errno = keyof typeof constants.errno;

export class FsError extends Error {
  constructor(readonly code: Errno, message?: string) {
    // An errno is an answer, not a fault: no stack (capturing one cost more than the rest of a failed lookup).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? code);
    Error.stackTraceLimit = limit;
  }

  /** The negative errno number FUSE expects. */
  get errno(): number {
    return -constants.errno[this.code];
  }
}

export function fsError(code: Errno, message?: string): FsError {
  return new FsError(code, message);
}
