#!/usr/bin/env node
// Compiles Stowage's own native code after `npm ci`: native/fuse3, the
// libfuse 3 low-level binding the mount agent serves its file system with
// (loaded by src/mount/fuse/session.ts from native/fuse3/build/Release), and
// native/pty-relay, the pseudo-terminal relay sandbox agents run `pty`
// commands through (an executable, bound into every sandbox), and
// native/ns-attach, the helper supervisors give running sandboxes their
// volumes and host name with.
// It uses the node-gyp npm bundles and Debian's libfuse3-dev + pkg-config
// (./setup.sh installs them).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const bundled = join(
    dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  );
  if (existsSync(bundled)) return bundled;
  console.error('build-native: cannot find node-gyp (npm bundles it; run this through npm)');
  process.exit(1);
}

// Outside npm (run by hand) npm_config_nodedir is unset: ask npm for it, so
// node-gyp uses the installed headers instead of downloading them.
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const r = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir && dir !== 'undefined' && dir !== 'null' ? dir : undefined;
}

for (const addon of ['fuse3', 'pty-relay', 'ns-attach']) {
  const cwd = join(root, 'native', addon);
  const args = [nodeGyp(), 'rebuild', '--loglevel=error'];
  const dir = nodeDir();
  if (dir) args.push(`--nodedir=${dir}`);
  console.log(`build-native: compiling native/${addon}`);
  const r = spawnSync(process.execPath, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) {
    console.error(
      `build-native: compiling native/${addon} failed (it needs make, gcc, pkg-config, libfuse3-dev and Node headers; ./setup.sh installs them)`,
    );
    process.exit(r.status ?? 1);
  }
}
