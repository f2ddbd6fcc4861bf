/** The engine's file service: streamed writes and reads, ranges, and small files packed into one object. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { sha, world, close, writePacked, read, type World } from './engine-world.test-helper.js';

describe('engine files', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('stores a stream the server receives and streams files and ranges back', async () => {
    await w.engine.createVolume(w.actor, 'streams');
    const big = Buffer.alloc(SMALL_CHUNK_SIZE + 1000, 7);
    big.write('tail', big.length - 4);
    async function* body() {
      for (let o = 0; o < big.length; o += 65536) yield big.subarray(o, o + 65536);
    }
    const res = await w.engine.writeFile(w.actor, 'streams', '/big.bin', body(), { sha256: sha(big), mode: 0o600 });
    assert.equal(res.uploadedChunks, 2);
    const again = await w.engine.writeFile(w.actor, 'streams', '/copy.bin', body());
    assert.equal(again.uploadedChunks, 0, 'stored chunks are reused');
    const collect = async (it: AsyncIterable<Uint8Array>) => {
      const parts = [];
      for await (const p of it) parts.push(p);
      return Buffer.concat(parts);
    };
    const whole = await w.engine.readFile(w.actor, 'streams', '/big.bin');
    assert.equal(whole.entry.mode, 0o600);
    assert.ok((await collect(whole.body)).equals(big));
    const across = await w.engine.readFile(w.actor, 'streams', '/big.bin', {
      range: { start: SMALL_CHUNK_SIZE - 2, end: big.length - 1 },
    });
    assert.ok((await collect(across.body)).equals(big.subarray(SMALL_CHUNK_SIZE - 2)));
    await assert.rejects(w.engine.readFile(w.actor, 'streams', '/big.bin', { range: { start: 0, end: big.length } }), {
      code: 'InvalidArgument',
    });
    await assert.rejects(w.engine.writeFile(w.actor, 'streams', '/bad.bin', body(), { sha256: 'f'.repeat(64) }), {
      code: 'InvalidArgument',
    });
    await assert.rejects(w.engine.stat(w.actor, 'streams', '/bad.bin'), { code: 'NotFound' });
  });

  it('stores small files in one pack, verifies every chunk in it, and reads them by range', async () => {
    await w.engine.createVolume(w.actor, 'packed');
    await writePacked(w, 'packed', { '/a.txt': 'alpha', '/b.txt': 'bravo!', '/c/d.txt': 'charlie' });
    assert.equal(await read(w, 'packed', '/b.txt'), 'bravo!');
    assert.equal(await read(w, 'packed', '/c/d.txt'), 'charlie');
    const rows = await w.md.getChunks([sha(Buffer.from('bravo!'))] as never[]);
    assert.equal(rows[0]!.offset, 5);
    assert.match(rows[0]!.objectKey, /^packs\//);
    // A manifest that claims a hash for other bytes is refused: chunks are shared, so a lie would poison others.
    await assert.rejects(
      writePacked(w, 'packed', { '/x': 'xxxx', '/y': 'yyyy' }, (m) => {
        m[1]!.hash = sha(Buffer.from('zzzz'));
      }),
      { code: 'InvalidArgument', message: /do not hash/ },
    );
    await assert.rejects(
      writePacked(w, 'packed', { '/x': 'xxxx', '/y': 'yyyy' }, (m) => {
        m[1]!.offset = 3;
      }),
      { code: 'InvalidArgument', message: /offset order/ },
    );
    await assert.rejects(w.engine.stat(w.actor, 'packed', '/x'), { code: 'NotFound' });
  });
});
