/**
 * @module sandbox/daemon/spare-pool
 * The spare supervisors a host daemon keeps started and waiting (see
 * supervisor/prepared-sandbox): each formats a state disk of the default
 * size and, given the warm image (the image of the host's last create),
 * prepares a whole sandbox of it, so a create of that image takes tens of
 * milliseconds instead of a few hundred. A create takes a spare of its image
 * if there is one, else any (Node is started either way). Making another
 * image warm lets the spares of the old one go: they remove what they made
 * and exit.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { IdRange } from '../host/launch-args.js';
import { DEFAULT_DISK_GIB } from '../runtime.js';
import { SUPERVISOR_MAIN, type SpareOrder } from '../supervisor/supervisor-files.js';

/** How long letting a spare go waits for it to remove what it prepared. */
const SPARE_EXIT_WAIT_MS = 10_000;

export interface SparePoolOptions {
  /** How many spares to keep (0: none). */
  size: number;
  /** The host's id range, which prepared sandboxes run as. */
  ids: IdRange;
  /** Starts a spare supervisor (detached, its link on fd 3) with its order. */
  spawn: (order: SpareOrder) => ChildProcess;
}

export class SparePool {
  #spares: Array<{ child: ChildProcess; imageRoot: string | undefined }> = [];
  /** Spares let go of, until they have exited. */
  readonly #leaving = new Set<Promise<void>>();
  #warmImage: string | undefined;
  #closed = false;

  constructor(private readonly opts: SparePoolOptions) {}

  /** Starts spares up to the pool's size, each for the warm image; one that exits unused leaves the pool. */
  refill(): void {
    const imageRoot = this.#warmImage;
    const order: SpareOrder = {
      diskGib: DEFAULT_DISK_GIB,
      ...(imageRoot !== undefined ? { image: { root: imageRoot, ids: this.opts.ids } } : {}),
    };
    while (!this.#closed && this.#spares.length < this.opts.size) {
      const child = this.opts.spawn(order);
      child.unref();
      (child.stdio[3] as Duplex).on('error', () => undefined);
      const spare = { child, imageRoot };
      child.once('exit', () => {
        this.#spares = this.#spares.filter((s) => s !== spare);
      });
      this.#spares.push(spare);
    }
  }

  /** A spare for a sandbox of `imageRoot`: one prepared for that image if there is one, else any. */
  take(imageRoot: string): ChildProcess | undefined {
    const i = this.#spares.findIndex((s) => s.imageRoot === imageRoot);
    const [spare] = this.#spares.splice(Math.max(i, 0), 1);
    return spare?.child;
  }

  /** Makes `imageRoot` the image spares prepare; spares of another image are let go. */
  warm(imageRoot: string | undefined): void {
    if (this.#warmImage === imageRoot) return;
    this.#warmImage = imageRoot;
    for (const spare of this.#spares.filter((s) => s.imageRoot !== imageRoot)) {
      this.#spares = this.#spares.filter((s) => s !== spare);
      const leaving = letGo(spare.child, SPARE_EXIT_WAIT_MS).finally(() => this.#leaving.delete(leaving));
      this.#leaving.add(leaving);
    }
  }

  /** Lets every spare go and waits for them to have removed what they made. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([
      ...this.#spares.splice(0).map((spare) => letGo(spare.child, SPARE_EXIT_WAIT_MS)),
      ...this.#leaving,
    ]);
  }
}

/** Closes a spare's link (it then removes what it made and exits); resolves once it has exited, or after `waitMs`. */
function letGo(spare: ChildProcess, waitMs: number): Promise<void> {
  (spare.stdio[3] as Duplex).destroy();
  if (spare.exitCode !== null || spare.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // Held while it cleans up: a process whose last work is closing the host waits for it.
    spare.ref();
    const done = () => {
      clearTimeout(timer);
      spare.unref();
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    spare.once('exit', done);
  });
}

/** Whether `pid` is a running supervisor process (a pid the kernel gave to something else since is not). */
export function isSupervisor(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(SUPERVISOR_MAIN);
  } catch {
    return false;
  }
}
