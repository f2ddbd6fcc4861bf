/** Unit tests of sdk/tar-reader against archives written by tar-stream (the server's packer). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'tar-stream';
import { readTar, type TarHeader } from './tar-reader.js';

async function packed(add: (p: ReturnType<typeof pack>) => void): Promise<Buffer> {
  const p = pack();
  add(p);
  p.finalize();
  const parts: Buffer[] = [];
  for await (const d of p as AsyncIterable<Buffer>) parts.push(d);
  return Buffer.concat(parts);
}

/** Feeds the bytes in small, uneven pieces, as a network would. */
async function* pieces(b: Buffer, size = 700): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function entries(b: Buffer): Promise<Array<TarHeader & { data: Buffer }>> {
  const out: Array<TarHeader & { data: Buffer }> = [];
  await readTar(pieces(b), async (h, body) => {
    const parts: Buffer[] = [];
    for await (const d of body) parts.push(d);
    out.push({ ...h, data: Buffer.concat(parts) });
  });
  return out;
}

const long = `${'deep/'.repeat(40)}name-ü.txt`;
const mtime = new Date('2025-06-01T12:00:00Z');

test('reads files, directories, symlinks, empty files and long (pax) names with modes and mtimes', async () => {
  const big = Buffer.alloc(70_001, 7);
  const tar = await packed((p) => {
    p.entry({ name: 'dir/', type: 'directory', mode: 0o750, mtime });
    p.entry({ name: 'dir/a.txt', mode: 0o640, mtime }, 'alpha');
    p.entry({ name: 'empty', mode: 0o644, mtime }, Buffer.alloc(0));
    p.entry({ name: 'link', type: 'symlink', linkname: 'dir/a.txt', mtime });
    p.entry({ name: long, mode: 0o600, mtime }, big);
  });
  const got = await entries(tar);
  assert.deepEqual(
    got.map((e) => [e.name, e.type]),
    [
      ['dir/', 'directory'],
      ['dir/a.txt', 'file'],
      ['empty', 'file'],
      ['link', 'symlink'],
      [long, 'file'],
    ],
  );
  assert.equal(got[0]!.mode, 0o750);
  assert.equal(got[1]!.data.toString(), 'alpha');
  assert.equal(got[1]!.mode, 0o640);
  assert.equal(got[1]!.mtime, mtime.getTime());
  assert.equal(got[2]!.data.length, 0);
  assert.equal(got[3]!.linkname, 'dir/a.txt');
  assert.ok(got[4]!.data.equals(big));
});

test('skips the bytes of entries the callback does not read', async () => {
  const tar = await packed((p) => {
    p.entry({ name: 'a', mtime }, Buffer.alloc(5000, 1));
    p.entry({ name: 'b', mtime }, 'bee');
  });
  const names: string[] = [];
  let b = '';
  await readTar(pieces(tar), async (h, body) => {
    names.push(h.name);
    if (h.name === 'b') for await (const d of body) b += d.toString();
  });
  assert.deepEqual(names, ['a', 'b']);
  assert.equal(b, 'bee');
});

test('a cut or damaged stream fails loudly', async () => {
  const tar = await packed((p) => p.entry({ name: 'a', mtime }, Buffer.alloc(3000, 1)));
  await assert.rejects(entries(tar.subarray(0, 1500)), /ended in the middle/);
  const damaged = Buffer.from(tar);
  damaged[10] = damaged[10]! ^ 0xff;
  await assert.rejects(entries(damaged), /checksum/);
});
