#!/usr/bin/env node
// Compiles fuse-native from its (patched) source after `npm ci`.
//
// fuse-native 2.2.6 ships a prebuilt addon whose utimens passes the access
// time in place of the modification time (and mangles UTIME_NOW/UTIME_OMIT),
// so `tar x`, `cp -p` and `touch -d` would lose mtimes in a mount.
// patches/fuse-native+2.2.6.patch fixes the C source (applied by
// patch-package just before this script); this builds it with the node-gyp
// npm bundles, against Debian's libfuse2. node-gyp-build then loads
// build/Release/fuse.node ahead of the prebuilt one.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const dir = dirname(require.resolve('fuse-native/package.json'));

function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return bundled;
  console.error('build-fuse-native: cannot find node-gyp (npm bundles it; run this through npm)');
  process.exit(1);
}

const args = [nodeGyp(), 'rebuild', '--loglevel=error'];
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
console.log('build-fuse-native: compiling fuse-native with the utimens fix');
const r = spawnSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
if (r.status !== 0) {
  console.error('build-fuse-native: compiling fuse-native failed (it needs make, g++ and Node headers; ./setup.sh installs them)');
  process.exit(r.status ?? 1);
}
