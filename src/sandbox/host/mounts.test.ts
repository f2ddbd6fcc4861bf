import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUnder, parseMountInfo } from './mounts.js';

describe('mount table', () => {
  it('reads mount points, types and sources from mountinfo, escapes decoded', () => {
    const text = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '90 22 0:50 / /data/sandboxes/a\\040b/root rw,relatime - overlay overlay rw,lowerdir=/x,upperdir=/y',
      '91 22 7:3 / /data/sandboxes/a/disk rw,nodev shared:5 master:2 - ext4 /dev/loop3 rw',
      '',
    ].join('\n');
    assert.deepEqual(parseMountInfo(text), [
      { mountPoint: '/', fsType: 'ext4', source: '/dev/vda' },
      { mountPoint: '/data/sandboxes/a b/root', fsType: 'overlay', source: 'overlay' },
      { mountPoint: '/data/sandboxes/a/disk', fsType: 'ext4', source: '/dev/loop3' },
    ]);
  });

  it('treats a sibling with a common prefix as outside a directory', () => {
    assert.equal(isUnder('/d/sandboxes/ab', '/d/sandboxes/a'), false);
    assert.equal(isUnder('/d/sandboxes/a/root', '/d/sandboxes/a'), true);
    assert.equal(isUnder('/d/sandboxes/a', '/d/sandboxes/a'), true);
  });
});
