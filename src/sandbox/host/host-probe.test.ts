/**
 * The host probe on the real host (as root it must be ready: setup.sh installs
 * what sandboxes need) and on fakes of each input: a PATH without bwrap, empty
 * or hostile subuid files, user namespaces off, not root, no cgroups. Each
 * missing piece comes back with its fix.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REQUIRED_BINARIES,
  describeReadiness,
  findOnPath,
  probeHost,
  subordinateRange,
  type HostReadiness,
  type Missing,
} from './host-probe.js';

const isRoot = process.getuid?.() === 0;
const missingOf = (r: HostReadiness): Missing[] => (r.ready ? [] : r.missing);

describe('sandbox host probe', () => {
  let dir: string;
  let fakePath: string;
  let goodSubids: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-probe-'));
    // A PATH holding the real binaries, bwrap excepted.
    fakePath = join(dir, 'bin');
    mkdirSync(fakePath);
    for (const name of Object.keys(REQUIRED_BINARIES)) {
      const real = findOnPath(name, process.env.PATH ?? '');
      if (real && name !== 'bwrap') symlinkSync(real, join(fakePath, name));
    }
    goodSubids = join(dir, 'subid');
    writeFileSync(goodSubids, 'root:100000:65536\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("finds this host ready, with root's subordinate range and the cgroup mode", {
    skip: !isRoot && 'needs root',
  }, () => {
    const r = probeHost();
    assert.ok(r.ready, describeReadiness(r));
    assert.deepEqual(r.ids, { hostUid: 100000, hostGid: 100000, count: 65536 });
    assert.ok(r.cgroupMode === 'v1' || r.cgroupMode === 'v2');
    assert.match(r.binaries.bwrap ?? '', /\/bwrap$/);
    assert.match(describeReadiness(r), /can run sandboxes \(cgroup v[12], ids 100000\+65536\)/);
  });

  it('names a binary missing from PATH with the package that has it', () => {
    const r = probeHost({ uid: 0, path: fakePath, subuidFile: goodSubids, subgidFile: goodSubids });
    assert.equal(r.ready, false);
    assert.deepEqual(
      missingOf(r).filter((m) => m.what.startsWith('bwrap')),
      [{ what: 'bwrap not found on PATH', fix: 'apt-get install bubblewrap' }],
    );
    const none = probeHost({ uid: 0, path: join(dir, 'nothing-here'), subuidFile: goodSubids, subgidFile: goodSubids });
    assert.deepEqual(
      missingOf(none)
        .map((m) => m.fix)
        .filter((f) => f.startsWith('apt-get'))
        .sort(),
      [
        'apt-get install bubblewrap',
        'apt-get install mmdebstrap',
        'apt-get install uidmap',
        'apt-get install uidmap',
        'apt-get install util-linux',
      ],
    );
  });

  it('an empty or absent subuid file asks for the line to add', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const r = probeHost({ uid: 0, subuidFile: empty, subgidFile: join(dir, 'absent') });
    assert.deepEqual(
      missingOf(r)
        .filter((m) => m.what.includes('subordinate'))
        .map((m) => m.fix),
      [`add the line 'root:100000:65536' to ${empty}`, `add the line 'root:100000:65536' to ${join(dir, 'absent')}`],
    );
    assert.match(describeReadiness(r), /cannot run sandboxes: .*fix: add the line 'root:100000:65536'/);
  });

  it('reads subuid ranges as shadow-utils does and refuses ranges that are too small or include host root', () => {
    const f = join(dir, 'subuid-mixed');
    writeFileSync(
      f,
      '# comment\nalice:200000:65536\nroot:0:65536\nroot:300000:1000\ngarbage line\nroot:x:y\n0:400000:70000\nroot:500000:65536\n',
    );
    assert.deepEqual(
      subordinateRange(f, 'root', 0),
      { start: 400000, count: 70000 },
      'by uid too, first sufficient range',
    );
    assert.equal(subordinateRange(f, 'bob', 1000), undefined);
    const only = join(dir, 'subuid-bad');
    writeFileSync(only, 'root:0:65536\nroot:300000:1000\nroot:4294967000:65536\n');
    assert.equal(subordinateRange(only, 'root', 0), undefined);
  });

  it('reports user namespaces off, not root and no usable cgroups, each with its fix', () => {
    const zero = join(dir, 'max_user_namespaces');
    writeFileSync(zero, '0\n');
    const noCgroups = join(dir, 'no-cgroups');
    mkdirSync(noCgroups);
    const r = probeHost({
      uid: 1000,
      subuidFile: goodSubids,
      subgidFile: goodSubids,
      maxUserNamespacesFile: zero,
      cgroupRoot: noCgroups,
    });
    const m = missingOf(r);
    assert.deepEqual(
      m.find((x) => x.what.startsWith('not running as root')),
      {
        what: 'not running as root (uid 1000)',
        fix: 'run the sandbox host as root (stowage serve / stowage sandbox-host under root or a root systemd unit)',
      },
    );
    assert.match(m.find((x) => x.what.startsWith('user namespaces'))?.fix ?? '', /user\.max_user_namespaces=15000/);
    assert.match(
      m.find((x) => x.what.includes('cgroup'))?.what ?? '',
      /no cgroup v2 tree.*no cgroup v1 hierarchy for cpu, memory, pids, freezer/,
    );
  });
});
