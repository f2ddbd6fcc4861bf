/**
 * @module client/chunker.test
 * Chunk boundaries and hashes of the three chunkers (bytes, local file,
 * stream), and that they agree with each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SMALL_CHUNK_SIZE } from '../common/chunking.js';
import { chunkBytes, chunkFile, rechunk, sha256Hex, type ChunkRef } from './chunker.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Deterministic, non-repeating bytes (so distinct chunks have distinct hashes). */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function withTempFile<T>(data: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-chunker-'));
  try {
    const p = join(dir, 'f.bin');
    await writeFile(p, data);
    return await fn(p);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function chunksOfStream(source: AsyncIterable<unknown>): Promise<ChunkRef[]> {
  const out: ChunkRef[] = [];
  let offset = 0;
  for await (const piece of rechunk(source, SMALL_CHUNK_SIZE)) {
    out.push({ hash: sha256Hex(piece), size: piece.length, offset });
    offset += piece.length;
  }
  return out;
}

test('sha256Hex is the SHA-256 of the bytes in lowercase hex', () => {
  assert.equal(sha256Hex(new Uint8Array()), EMPTY_SHA);
  assert.equal(sha256Hex(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('empty content has no chunks', async () => {
  assert.deepEqual(chunkBytes(new Uint8Array()), { size: 0, chunkSize: SMALL_CHUNK_SIZE, chunks: [] });
  await withTempFile(new Uint8Array(), async (p) => {
    const f = await chunkFile(p);
    assert.equal(f.size, 0);
    assert.deepEqual(f.chunks, []);
  });
  assert.deepEqual(await chunksOfStream(Readable.from([])), []);
});

test('one byte is one chunk of one byte', async () => {
  const data = Buffer.from([0x61]);
  const want = [{ hash: sha(data), size: 1, offset: 0 }];
  assert.deepEqual(chunkBytes(data).chunks, want);
  await withTempFile(data, async (p) => assert.deepEqual((await chunkFile(p)).chunks, want));
  assert.deepEqual(await chunksOfStream(Readable.from([data])), want);
});

test('an exact multiple of the chunk size has only full chunks', () => {
  const size = 4;
  const data = Buffer.from('aaaabbbbcccc');
  const cut = chunkBytes(data, size);
  assert.equal(cut.chunks.length, 3);
  assert.deepEqual(cut.chunks.map((c) => [c.offset, c.size]), [[0, 4], [4, 4], [8, 4]]);
  assert.deepEqual(cut.chunks.map((c) => c.hash), [sha(Buffer.from('aaaa')), sha(Buffer.from('bbbb')), sha(Buffer.from('cccc'))]);
});

test('a file of exactly two small chunks is cut at SMALL_CHUNK_SIZE', async () => {
  const data = pattern(2 * SMALL_CHUNK_SIZE);
  const want = [
    { hash: sha(data.subarray(0, SMALL_CHUNK_SIZE)), size: SMALL_CHUNK_SIZE, offset: 0 },
    { hash: sha(data.subarray(SMALL_CHUNK_SIZE)), size: SMALL_CHUNK_SIZE, offset: SMALL_CHUNK_SIZE },
  ];
  assert.deepEqual(chunkBytes(data).chunks, want);
  await withTempFile(data, async (p) => assert.deepEqual((await chunkFile(p)).chunks, want));
});

test('multi-chunk content ends with a short chunk; file, bytes and stream agree', async () => {
  const size = 2 * SMALL_CHUNK_SIZE + 12345;
  const data = pattern(size);
  const bytes = chunkBytes(data);
  assert.equal(bytes.chunkSize, SMALL_CHUNK_SIZE);
  assert.deepEqual(bytes.chunks.map((c) => c.size), [SMALL_CHUNK_SIZE, SMALL_CHUNK_SIZE, 12345]);
  assert.equal(bytes.chunks[2]!.hash, sha(data.subarray(2 * SMALL_CHUNK_SIZE)));
  await withTempFile(data, async (p) => {
    const file = await chunkFile(p);
    assert.equal(file.size, size);
    assert.deepEqual(file.chunks, bytes.chunks);
    // The same file as a stream with odd-sized reads gives the same chunks.
    assert.deepEqual(await chunksOfStream(createReadStream(p, { highWaterMark: 65537 })), bytes.chunks);
  });
});

test('rechunk regroups arbitrary pieces into exact chunk-size pieces', async () => {
  const pieces = ['ab', 'cdefg', '', 'h', 'ijklmnopq'].map((s) => Buffer.from(s));
  const out: string[] = [];
  for await (const p of rechunk(Readable.from(pieces), 4)) out.push(p.toString());
  assert.deepEqual(out, ['abcd', 'efgh', 'ijkl', 'mnop', 'q']);
});

test('rechunk accepts strings from an encoded stream', async () => {
  const out: string[] = [];
  for await (const p of rechunk(Readable.from(['héllo', 'wörld']), 3)) out.push(p.toString('hex'));
  assert.equal(Buffer.from(out.join(''), 'hex').toString(), 'héllowörld');
});

test('chunkFile names a missing file in a NotFound error', async () => {
  await assert.rejects(chunkFile('/nonexistent/stowage-test-file'), (e: Error & { code?: string }) => e.code === 'NotFound' && e.message.includes('/nonexistent/stowage-test-file'));
});

test('chunkFile refuses a directory', async () => {
  await assert.rejects(chunkFile(tmpdir()), (e: Error & { code?: string }) => e.code === 'InvalidArgument');
});

test('chunkFile records mode and mtime of the local file', async () => {
  await withTempFile(Buffer.from('x'), async (p) => {
    const f = await chunkFile(p);
    assert.equal(typeof f.mode, 'number');
    assert.ok(f.mode > 0 && f.mode <= 0o7777);
    assert.ok(Math.abs(f.mtime - Date.now()) < 60_000);
  });
});
