/**
 * @module test/helpers/test-tools
 * The third-party file-system test tools (pjdfstest, fsx) built from
 * ../shared/tools by scripts/build-test-tools.mjs into the repo's gitignored
 * .tools/<source hash>/ (built on first use, rebuilt when ../shared/tools
 * changes). A missing source or a failed build fails the test: these suites
 * run in CI always, never skipped.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the built tools are. */
export interface TestTools {
  /** The build directory, .tools/<hash>. */
  dir: string;
  /** pjdfstest's tests directory: one sub-directory per system call (chmod, rename ...). */
  pjdfstestTests: string;
  /** The fsx binary. */
  fsx: string;
}

/** The repo root (dist/test/helpers -> ../../..). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let building: Promise<TestTools> | undefined;

/** Builds the tools if needed (asynchronously: a test server may live in this process) and says where they are. */
export function testTools(): Promise<TestTools> {
  building ??= new Promise<TestTools>((done, fail) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'build-test-tools.mjs')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', fail);
    child.on('close', (status) => {
      const dir = out.trim().split('\n').pop() ?? '';
      if (status !== 0 || dir === '') return fail(new Error(`scripts/build-test-tools.mjs exited ${status}:\n${err}`));
      done({ dir, pjdfstestTests: join(dir, 'pjdfstest', 'tests'), fsx: join(dir, 'fsx') });
    });
  });
  return building;
}
