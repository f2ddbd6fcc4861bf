import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mountSource, stateDirFromMountTable } from './mount-state.js';

describe('mount table lookup', () => {
  it('finds the state dir of a Stowage mount, octal escapes undone, the topmost mount winning', () => {
    const table = [
      'proc /proc proc rw 0 0',
      'stowage:/old/state /mnt/my\\040data fuse.stowage rw 0 0',
      'stowage:/home/a\\040b/.stowage/mounts/x /mnt/my\\040data fuse.stowage rw 0 0',
      'other:/x /mnt/ssh fuse.sshfs rw 0 0',
    ].join('\n');
    assert.equal(stateDirFromMountTable(table, '/mnt/my data'), '/home/a b/.stowage/mounts/x');
    assert.equal(stateDirFromMountTable(table, '/mnt/ssh'), undefined);
    assert.equal(stateDirFromMountTable('', '/mnt/x'), undefined);
  });

  it('escapes commas for libfuse options', () => {
    assert.equal(mountSource('/s,t'), 'stowage:/s\\,t');
  });
});
