/** Unit tests of the download command's argument rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { archiveFormatOf } from './download-commands.js';

test('the archive format follows the output name, and - means tar.gz', () => {
  assert.equal(archiveFormatOf('out.tar'), 'tar');
  assert.equal(archiveFormatOf('out.TAR.GZ'), 'tar.gz');
  assert.equal(archiveFormatOf('dir/out.tgz'), 'tar.gz');
  assert.equal(archiveFormatOf('-'), 'tar.gz');
  assert.equal(archiveFormatOf('-', 'tar'), 'tar');
  assert.equal(archiveFormatOf('weird.bin', 'tar.gz'), 'tar.gz');
});

test('unknown extensions and formats are refused', () => {
  for (const out of ['out.zip', 'out', 'out.tar.bz2', 'out.gz'])
    assert.throws(() => archiveFormatOf(out), InvalidArgumentError, out);
  assert.throws(() => archiveFormatOf('-', 'zip'), InvalidArgumentError);
});
