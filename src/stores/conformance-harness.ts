/**
 * @module conformance-harness
 * The lifecycle every store conformance suite shares: a fresh store before
 * each test, closed and cleaned up after it, whatever the test did.
 */
import { afterEach, beforeEach } from 'node:test';

/** A store under test and how to get rid of it. */
export interface OpenedStore<S extends { close(): Promise<void> }> {
  store: S;
  /** Removes everything the store holds (called after store.close()). */
  cleanup(): Promise<void>;
}

/** Registers hooks that hand each test a fresh store through `use`, and close and clean it afterwards. */
export function freshStorePerTest<S extends { close(): Promise<void> }>(
  open: () => Promise<OpenedStore<S>>,
  use: (store: S) => void,
): void {
  let opened: OpenedStore<S> | undefined;
  beforeEach(async () => {
    opened = await open();
    use(opened.store);
  });
  afterEach(async () => {
    const o = opened;
    opened = undefined;
    if (!o) return;
    try {
      await o.store.close();
    } finally {
      await o.cleanup();
    }
  });
}
