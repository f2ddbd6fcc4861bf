/**
 * The libfuse 3 binding alone (no agent, no server): an in-memory file system
 * (src/mount/fuse/memory-fs.test-helper.ts) mounted through mountFuse, driven
 * by child processes. With attribute and entry timeouts of 0 every `stat` is
 * a lookup + getattr round trip through the kernel, the binding and the JS
 * thread: the binding's own per-request cost. The stat row runs twice: with
 * the default spin (the JS thread polls /dev/fuse briefly once idle) and
 * without it, which shows what a sleeping thread's wake-up costs here.
 *
 *   npm run build && node dist/bench/fuse-session.js
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryFs } from '../src/mount/fuse/memory-fs.test-helper.js';
import { mountFuse } from '../src/mount/fuse/session.js';
import { run } from './bench-server.js';

const STATS = 20_000;
const WRITE_MIB = 1024;
const TIMEOUT_MS = 10 * 60_000;

const work = await mkdtemp(join(tmpdir(), 'fuse-bench-'));
const mnt = join(work, 'mnt');
const fs = new MemoryFs();
fs.timeout = 0;
fs.add(1, 'file', 'x');
// A sink: writes are counted, not kept, so a large write costs no memory.
fs.write = async (_ctx, _ino, data) => {
  fs.seen.largestWrite = Math.max(fs.seen.largestWrite, data.length);
  return data.length;
};
fs.add(1, 'sink', '');

/** Stats per second of one process statting one file in a fresh mount with `spinMicros`. */
async function statRate(spinMicros: number | undefined): Promise<number> {
  const session = await mountFuse(mnt, fs, { options: ['fsname=bench'], force: true, spinMicros });
  try {
    const statter = `const fs = require('fs'); const t0 = process.hrtime.bigint(); for (let i = 0; i < ${STATS}; i++) fs.statSync(${JSON.stringify(join(mnt, 'file'))}); console.log(Number(process.hrtime.bigint() - t0) / 1e6);`;
    const ms = Number((await run(process.execPath, ['-e', statter], { timeoutMs: TIMEOUT_MS })).stdout);
    return Math.round(STATS / (ms / 1000));
  } finally {
    await session.unmount();
  }
}

try {
  const spinning = await statRate(undefined);
  const sleeping = await statRate(0);
  const session = await mountFuse(mnt, fs, { options: ['fsname=bench'], force: true });
  try {
    const dd = await run(
      'dd',
      ['if=/dev/zero', `of=${join(mnt, 'sink')}`, 'bs=1M', `count=${WRITE_MIB}`, 'status=none'],
      { timeoutMs: TIMEOUT_MS },
    );
    const rows = [
      ['stat (lookup + getattr, timeouts 0), one process', `${spinning.toLocaleString('en-US')} ops/s`],
      ['the same with spinMicros 0 (the JS thread sleeps at once)', `${sleeping.toLocaleString('en-US')} ops/s`],
      [
        `dd bs=1M of ${WRITE_MIB} MiB into a discarding file`,
        `${Math.round(WRITE_MIB / (dd.ms / 1000))} MiB/s (largest write ${fs.seen.largestWrite / 1024} KiB)`,
      ],
    ];
    console.log(
      `FUSE protocol 7.${session.conn.protoMinor}, max_write ${session.conn.maxWrite}, max_pages ${session.conn.maxPages}\n`,
    );
    console.log('| benchmark | result |\n| --- | --- |');
    for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
  } finally {
    await session.unmount();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
