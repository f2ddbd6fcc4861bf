/**
 * @module common/package-root
 * Where the Stowage package is installed: the native code it builds
 * (native/fuse3, native/pty-relay) lives there, not next to compiled modules.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package root: the nearest directory above this module with Stowage's package.json and native/. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native', 'fuse3', 'binding.gyp'))) {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir)
      throw new Error(`cannot find the Stowage package root (with native/) above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** A file Stowage built from native/ (`node scripts/build-native.mjs`), or an error that says how to build it. */
export function nativeBuild(dir: string, file: string, needs: string): string {
  const path = join(packageRoot(), 'native', dir, 'build', 'Release', file);
  if (!existsSync(path))
    throw new Error(`${path} is missing: run \`node scripts/build-native.mjs\` (${needs}; ./setup.sh installs them)`);
  return path;
}
