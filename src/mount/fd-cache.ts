/**
 * @module mount/fd-cache
 * A bounded set of open descriptors of the overlay's data files, least
 * recently used first out. A mount may hold tens of thousands of local
 * (created or written) files until commit; one descriptor each ran the agent
 * out of descriptors (EMFILE), and then lease renewal, the control socket and
 * every new write failed with it. Now a data file is opened on demand and at
 * most `capacity` idle descriptors stay open.
 *
 * A descriptor is counted while an operation uses it (`acquire`/`release`,
 * or `use`): one in use is never closed under its read, write or hash, even
 * when it is evicted or dropped meanwhile; it is closed when the last user
 * lets go. So the bound can be passed for a moment by operations in flight
 * (which the FUSE layer and upload concurrency bound), never by idle files.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { DEFAULT_OPEN_FILES } from '@stowage/sdk/common/mount-state.js';

interface Slot {
  fd: number;
  uses: number;
  /** Closed by `drop`/`evict` while in use: close at the last release, and never hand out again. */
  doomed: boolean;
}

export class FdCache {
  /** Insertion order is recency order (a use re-inserts); only current slots, never doomed ones. */
  readonly #slots = new Map<string, Slot>();
  /** Slots dropped while in use, by fd (an fd number is unique while it is open). */
  readonly #doomed = new Map<number, Slot>();
  #opened = 0;
  #inUse = 0;

  /**
   * @param pathOf where the data file of an id is
   * @param capacity descriptors kept open at most once their users are done
   */
  constructor(
    private readonly pathOf: (id: string) => string,
    readonly capacity = DEFAULT_OPEN_FILES,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError('the descriptor cache needs room for at least one descriptor');
  }

  /**
   * Opens (or reuses) the data file of `id` read-write and counts a user; pair with `release(id, fd)`.
   * `create`: the file may not exist yet (made empty if missing).
   */
  acquire(id: string, create = false): number {
    let slot = this.#slots.get(id);
    if (slot) {
      this.#slots.delete(id);
    } else {
      this.#trim(this.capacity - 1);
      slot = { fd: this.#openFile(id, create), uses: 0, doomed: false };
      this.#opened++;
    }
    this.#slots.set(id, slot);
    if (slot.uses++ === 0) this.#inUse++;
    return slot.fd;
  }

  /** A user of `fd` (from `acquire(id)`) is done. */
  release(id: string, fd: number): void {
    const slot = this.#slots.get(id);
    const mine = slot && slot.fd === fd ? slot : this.#doomed.get(fd);
    if (!mine) return;
    if (--mine.uses === 0) {
      this.#inUse--;
      if (mine.doomed) {
        this.#doomed.delete(fd);
        this.#close(mine);
      } else this.#trim(this.capacity);
    }
  }

  /** Runs `fn` with the data file's descriptor, which stays open until `fn` settles. */
  async use<T>(id: string, fn: (fd: number) => Promise<T> | T, create = false): Promise<T> {
    const fd = this.acquire(id, create);
    try {
      return await fn(fd);
    } finally {
      this.release(id, fd);
    }
  }

  /** Forgets `id` (its file was deleted or is about to be): closed now, or at the last release when in use. */
  drop(id: string): void {
    const slot = this.#slots.get(id);
    if (!slot) return;
    this.#slots.delete(id);
    this.#retire(slot);
  }

  /** Forgets every id (the overlay is reset): idle descriptors close now, ones in use at their last release. */
  dropAll(): void {
    for (const slot of this.#slots.values()) this.#retire(slot);
    this.#slots.clear();
  }

  #retire(slot: Slot): void {
    if (slot.uses === 0) this.#close(slot);
    else {
      slot.doomed = true;
      this.#doomed.set(slot.fd, slot);
    }
  }

  /** Closes the least recently used idle descriptors until at most `keep` current slots are open. */
  #trim(keep: number): void {
    if (this.#slots.size <= keep) return;
    for (const [id, slot] of this.#slots) {
      if (this.#slots.size <= keep) return;
      if (slot.uses > 0) continue;
      this.#slots.delete(id);
      this.#close(slot);
    }
  }

  #openFile(id: string, create: boolean): number {
    const open = (): number =>
      create ? openSync(this.pathOf(id), constants.O_RDWR | constants.O_CREAT, 0o600) : openSync(this.pathOf(id), 'r+');
    try {
      return open();
    } catch (e) {
      // Out of descriptors for some other reason (a burst of sockets): give back every idle one and try once more.
      if ((e as NodeJS.ErrnoException).code !== 'EMFILE' && (e as NodeJS.ErrnoException).code !== 'ENFILE') throw e;
      this.#trim(0);
      return open();
    }
  }

  #close(slot: Slot): void {
    this.#opened--;
    try {
      closeSync(slot.fd);
    } catch {
      // already closed: nothing to give back
    }
  }

  /** How many descriptors are open (doomed ones in use included) and how many are in use. */
  stats(): { open: number; inUse: number; capacity: number } {
    return { open: this.#opened, inUse: this.#inUse, capacity: this.capacity };
  }
}
