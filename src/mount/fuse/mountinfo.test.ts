/**
 * @module mount/fuse/mountinfo.test
 * Parsing /proc/self/mountinfo: escaped paths, optional fields, and which
 * mounts count as FUSE (force-unmounting anything else would be a disaster).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuseMountAt, mountAt, parseMountinfo } from './mountinfo.js';

const sample = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '40 22 0:41 / /tmp/with\\040space rw,nosuid,nodev,relatime shared:7 master:2 - fuse.stowage vol\\040x rw,user_id=0,group_id=0',
  '41 22 0:42 / /mnt/data rw,relatime - ext4 /dev/sdb1 rw',
  '42 22 0:43 / /mnt/plain rw - fuse stowage rw',
  '43 42 0:44 / /mnt/plain rw - tmpfs tmpfs rw',
  'garbage line',
  '',
].join('\n');

test('parses mount points and sources with octal escapes and any number of optional fields', () => {
  const entries = parseMountinfo(sample);
  assert.equal(entries.length, 5);
  assert.deepEqual(entries[1], {
    device: '0:41',
    mountPoint: '/tmp/with space',
    fsType: 'fuse.stowage',
    source: 'vol x',
  });
});

test('finds the FUSE mount at a path, and never a non-FUSE one', () => {
  assert.equal(fuseMountAt('/tmp/with space', sample)?.device, '0:41');
  assert.equal(fuseMountAt('/mnt/data', sample), undefined, 'ext4 is not FUSE');
  assert.equal(fuseMountAt('/', sample), undefined);
  assert.equal(fuseMountAt('/tmp', sample), undefined, 'only exact mount points');
  // The topmost mount decides: a tmpfs over a FUSE mount is not a FUSE mount.
  assert.equal(mountAt('/mnt/plain', sample)?.fsType, 'tmpfs');
  assert.equal(fuseMountAt('/mnt/plain', sample), undefined);
});

test("reads this process's real mount table", () => {
  assert.equal(mountAt('/')?.mountPoint, '/');
});
