#!/usr/bin/env node
// Builds the file-system test tools (pjdfstest, fsx) from ../shared/tools with
// its own build.sh into .tools/<hash>/ of this repo, where <hash> is the
// sha256 of every file under ../shared/tools: a change there gives a new
// directory and a rebuild, an unchanged tree reuses the build (about 10 s).
// Prints the build directory on stdout (its last line). Called by setup.sh and,
// lazily, by the tests that need the tools (test/helpers/test-tools.ts), so a
// fresh clone works either way; two callers at once each build into a temp
// dir and the first rename wins.
//   node scripts/build-test-tools.mjs            # prints e.g. /repo/.tools/3f2a.../
//   STOWAGE_TEST_TOOLS_SRC=/elsewhere/tools node scripts/build-test-tools.mjs
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = resolve(process.env.STOWAGE_TEST_TOOLS_SRC ?? join(repo, '..', 'shared', 'tools'));
const cache = join(repo, '.tools');

if (!existsSync(join(source, 'build.sh'))) {
  console.error(
    `build-test-tools: ${source}/build.sh not found; the POSIX and fsx tests need ../shared/tools next to the repo (or STOWAGE_TEST_TOOLS_SRC pointing at a copy)`,
  );
  process.exit(1);
}

/** Every regular file under `dir`, sorted, as paths relative to `root`. */
function files(dir, root = dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) files(p, root, out);
    else if (st.isFile()) out.push(relative(root, p));
  }
  return out;
}

const hash = createHash('sha256');
for (const f of files(source)) {
  hash.update(`${f}\0`);
  hash.update(readFileSync(join(source, f)));
  hash.update('\0');
}
const id = hash.digest('hex').slice(0, 16);
const out = join(cache, id);
const built = (dir) => existsSync(join(dir, 'fsx')) && existsSync(join(dir, 'pjdfstest', 'pjdfstest'));

if (!built(out)) {
  mkdirSync(cache, { recursive: true });
  const tmp = join(cache, `${id}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  console.error(`build-test-tools: building pjdfstest and fsx from ${source} into ${out}`);
  const r = spawnSync('bash', [join(source, 'build.sh'), tmp], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !built(tmp)) {
    rmSync(tmp, { recursive: true, force: true });
    console.error(
      `build-test-tools: ${source}/build.sh failed (exit ${r.status}); it needs gcc, make, autoconf and automake (setup.sh installs them)`,
    );
    process.exit(1);
  }
  try {
    renameSync(tmp, out);
  } catch (e) {
    // Another caller finished first: its build is the same source.
    rmSync(tmp, { recursive: true, force: true });
    if (!built(out)) throw e;
  }
  // Builds of older sources are of no further use.
  for (const name of readdirSync(cache))
    if (name !== id && !name.includes('.tmp-')) rmSync(join(cache, name), { recursive: true, force: true });
}
console.log(out);
