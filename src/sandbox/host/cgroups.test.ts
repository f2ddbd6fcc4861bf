/**
 * The cgroup component over fake cgroup trees (plain directories laid out
 * like cgroupfs): which mode it detects and which files the limits go to.
 * The kernel's side (OOM, pids, freezing, killing) is tested for real in
 * test/sandbox-cgroups.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupSupport, detectCgroups } from './cgroups.js';
import { checkGroupName, checkLimits } from './cgroup-files.js';

function fakeRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'stowage-cgfake-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}
const read = (p: string) => readFileSync(p, 'utf8');
const V1_TREE = {
  'cpu/cgroup.procs': '',
  'memory/cgroup.procs': '',
  'pids/cgroup.procs': '',
  'freezer/cgroup.procs': '',
};

describe('cgroup mode detection', () => {
  it('picks v2 when the unified tree has cpu, memory and pids, even on a hybrid layout', () => {
    const pure = fakeRoot({ 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n' });
    assert.deepEqual(cgroupSupport(pure), { mode: 'v2', unified: pure });
    const hybrid = fakeRoot({ 'unified/cgroup.controllers': 'cpu memory pids\n', ...V1_TREE });
    assert.equal(cgroupSupport(hybrid).mode, 'v2');
    for (const r of [pure, hybrid]) rmSync(r, { recursive: true });
  });

  it('picks v1 when the v2 tree lacks controllers and the v1 hierarchies exist (the hybrid hosts here)', () => {
    const root = fakeRoot({ 'unified/cgroup.controllers': '\n', ...V1_TREE });
    assert.deepEqual(cgroupSupport(root), { mode: 'v1', unified: '' });
    rmSync(root, { recursive: true });
  });

  it('names what is missing when neither works, and detectCgroups refuses with that message', () => {
    const root = fakeRoot({ 'cgroup.controllers': 'cpu pids\n', 'cpu/cgroup.procs': '', 'memory/cgroup.procs': '' });
    const s = cgroupSupport(root);
    assert.equal(s.mode, undefined);
    assert.match((s as { missing: string }).missing, /no cgroup v1 hierarchy for pids, freezer/);
    assert.throws(
      () => detectCgroups({ root }),
      (e: Error & { code?: string }) => e.code === 'Unavailable' && /cannot be limited.*pids, freezer/.test(e.message),
    );
    rmSync(root, { recursive: true });
  });
});

describe('cgroup limits and names', () => {
  it('turns cores into a CFS quota per 100 ms period and refuses nonsense', () => {
    assert.equal(checkLimits({ cpuCores: 0.5 }), 50_000);
    assert.equal(checkLimits({ cpuCores: 2 }), 200_000);
    assert.equal(checkLimits({}), undefined);
    for (const bad of [
      { cpuCores: 0 },
      { cpuCores: -1 },
      { cpuCores: Number.NaN },
      { cpuCores: Infinity },
      { memoryBytes: 1.5 },
      { memoryBytes: 1024 },
      { pidsMax: 0 },
      { pidsMax: 2 ** 40 },
    ]) {
      assert.throws(
        () => checkLimits(bad),
        (e: Error & { code?: string }) => e.code === 'InvalidArgument',
        JSON.stringify(bad),
      );
    }
  });

  it('refuses group names that would leave the parent or are not one path component', () => {
    for (const bad of ['', '.', '..', '../x', 'a/b', '.hidden', 'x\0', 'a b', 'é', 'x'.repeat(129)]) {
      assert.throws(() => checkGroupName(bad), /cgroup name/, JSON.stringify(bad));
    }
    assert.equal(checkGroupName('sb-01HZX.2_a'), 'sb-01HZX.2_a');
    assert.throws(() => detectCgroups({ root: '/nonexistent', parent: '../escape' }), /cgroup name/);
  });

  it('v2: writes cpu.max, memory.max, memory.swap.max 0 and pids.max in the group under the parent', () => {
    const root = fakeRoot({ 'cgroup.controllers': 'cpu memory pids\n', 'stowage/sb1/memory.swap.max': 'max\n' });
    const host = detectCgroups({ root });
    assert.equal(host.mode, 'v2');
    assert.equal(read(join(root, 'cgroup.subtree_control')), '+cpu +memory +pids');
    assert.equal(read(join(root, 'stowage/cgroup.subtree_control')), '+cpu +memory +pids');
    const g = host.group('sb1');
    assert.deepEqual(g.paths, [join(root, 'stowage/sb1')]);
    g.setLimits({ cpuCores: 0.5, memoryBytes: 64 << 20, pidsMax: 32 });
    assert.equal(read(join(root, 'stowage/sb1/cpu.max')), '50000 100000');
    assert.equal(read(join(root, 'stowage/sb1/memory.max')), String(64 << 20));
    assert.equal(read(join(root, 'stowage/sb1/memory.swap.max')), '0');
    assert.equal(read(join(root, 'stowage/sb1/pids.max')), '32');
    g.setLimits({});
    assert.equal(read(join(root, 'stowage/sb1/cpu.max')), 'max 100000');
    assert.equal(read(join(root, 'stowage/sb1/memory.max')), 'max');
    rmSync(root, { recursive: true });
  });

  it('v1: writes the quota, the memory limit with memsw equal to it (no swap) and pids.max per controller', () => {
    const root = fakeRoot({ ...V1_TREE, 'memory/stowage/sb1/memory.memsw.limit_in_bytes': '9223372036854771712\n' });
    const host = detectCgroups({ root });
    assert.equal(host.mode, 'v1');
    const g = host.group('sb1');
    assert.deepEqual(
      g.paths,
      ['cpu', 'memory', 'pids', 'freezer'].map((c) => join(root, c, 'stowage/sb1')),
    );
    g.setLimits({ cpuCores: 1.5, memoryBytes: 256 << 20, pidsMax: 100 });
    assert.equal(read(join(root, 'cpu/stowage/sb1/cpu.cfs_quota_us')), '150000');
    assert.equal(read(join(root, 'cpu/stowage/sb1/cpu.cfs_period_us')), '100000');
    assert.equal(read(join(root, 'memory/stowage/sb1/memory.limit_in_bytes')), String(256 << 20));
    assert.equal(read(join(root, 'memory/stowage/sb1/memory.memsw.limit_in_bytes')), String(256 << 20));
    assert.equal(read(join(root, 'pids/stowage/sb1/pids.max')), '100');
    rmSync(root, { recursive: true });
  });
});
