/**
 * @module cli/commands/upload-commands.test
 * Where `stowage upload` puts things: file targets ending in "/" keep the
 * file's name, directories fill the target, standard input needs a name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remoteTarget } from './upload-commands.js';

const invalid = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'InvalidArgument' && re.test(e.message);

test('file targets', () => {
  assert.deepEqual(remoteTarget('./a.bin', 'file', 'data:/in/b.bin'), { volume: 'data', path: '/in/b.bin' });
  assert.deepEqual(remoteTarget('./a.bin', 'file', 'data:/in/'), { volume: 'data', path: '/in/a.bin' });
  assert.deepEqual(remoteTarget('/tmp/x/a.bin', 'file', 'data:/'), { volume: 'data', path: '/a.bin' });
  assert.deepEqual(remoteTarget('a.bin', 'file', 'data'), { volume: 'data', path: '/a.bin' });
});

test('directory and stdin targets', () => {
  assert.deepEqual(remoteTarget('./proj', 'directory', 'data:/src/'), { volume: 'data', path: '/src' });
  assert.deepEqual(remoteTarget('./proj', 'directory', 'data:'), { volume: 'data', path: '/' });
  assert.deepEqual(remoteTarget('-', 'stdin', 'data:/log.txt'), { volume: 'data', path: '/log.txt' });
  assert.throws(() => remoteTarget('-', 'stdin', 'data:/logs/'), invalid(/name the file/));
  assert.throws(() => remoteTarget('-', 'stdin', 'data'), invalid(/name the file/));
});

test('hostile targets are refused', () => {
  assert.throws(() => remoteTarget('a', 'file', 'data:/../etc/passwd'), invalid(/./));
  assert.throws(() => remoteTarget('a', 'file', ':/x'), invalid(/missing volume/));
  assert.throws(() => remoteTarget('a', 'file', 'BAD VOL:/x'), invalid(/./));
  assert.throws(() => remoteTarget('a', 'file', 'data:relative'), invalid(/./));
});
