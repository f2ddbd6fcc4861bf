/**
 * @module mount/gate
 * A readers-writer gate: many tree changes at once (shared), or one commit
 * or reload alone (exclusive). A waiting exclusive holder goes first, so a
 * steady stream of writes cannot starve a commit.
 */
export class Gate {
  #shared = 0;
  #exclusive = false;
  #queue: Array<{ exclusive: boolean; go: () => void }> = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#exclusive || this.#queue.length > 0)
      await new Promise<void>((go) => this.#queue.push({ exclusive: false, go }));
    else this.#shared++;
    try {
      return await fn();
    } finally {
      this.#shared--;
      this.#wake();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#exclusive || this.#shared > 0 || this.#queue.length > 0)
      await new Promise<void>((go) => this.#queue.push({ exclusive: true, go }));
    else this.#exclusive = true;
    try {
      return await fn();
    } finally {
      this.#exclusive = false;
      this.#wake();
    }
  }

  /** Hands the gate to the next waiters: one exclusive, or every shared one up to the next exclusive. */
  #wake(): void {
    if (this.#exclusive || this.#shared > 0) return;
    const first = this.#queue[0];
    if (!first) return;
    if (first.exclusive) {
      this.#queue.shift();
      this.#exclusive = true;
      first.go();
      return;
    }
    while (this.#queue.length > 0 && !this.#queue[0]!.exclusive) {
      this.#shared++;
      this.#queue.shift()!.go();
    }
  }
}
