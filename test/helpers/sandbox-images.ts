/**
 * @module test/helpers/sandbox-images
 * The images the sandbox tests run on, built once per machine: the image
 * cache lives in the system temp dir (`stowage-test-images/`), not in a test's
 * throwaway data dir. Images are content-addressed and their format version is
 * part of the id, so every worktree and every run shares them safely, and the
 * cache's flock makes parallel test files build each one once. A missing
 * package or mirror fails the test: these suites run in CI, never skipped.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Image, ImageStore } from '../../src/sandbox/host/images.js';

/** The data dir whose `images/` holds the shared test images. */
export const TEST_IMAGES_DATA_DIR = join(tmpdir(), 'stowage-test-images');

/** A store over the shared test image cache. */
export function testImageStore(): ImageStore {
  mkdirSync(TEST_IMAGES_DATA_DIR, { recursive: true, mode: 0o700 });
  return new ImageStore({ dataDir: TEST_IMAGES_DATA_DIR });
}

let busybox: Promise<Image> | undefined;
let debian: Promise<Image> | undefined;

/** The small test image: a static busybox (about 2 MB, built in seconds). */
export function busyboxImage(): Promise<Image> {
  busybox ??= testImageStore()
    .ensure({ base: 'busybox' })
    .then((r) => r.image);
  return busybox;
}

/** The default image: Debian bookworm minbase (about 35 s to build on an idle machine, once). */
export function debianImage(onLog?: (text: string) => void): Promise<Image> {
  debian ??= testImageStore()
    .ensure({ base: 'debian' }, onLog ? { onLog } : {})
    .then((r) => r.image);
  return debian;
}
