import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameError, MAX_BODY_BYTES, MAX_HEADER_BYTES, encodeFrame } from './frames.js';

describe('agent frames', () => {
  it('decode what was encoded, however the bytes are cut', () => {
    const bytes = Buffer.concat([
      encodeFrame({ a: 1 }),
      encodeFrame({ ev: 'out', id: 'x' }, Buffer.from('hello')),
      encodeFrame({ b: 'é' }, Buffer.alloc(3000, 7)),
    ]);
    for (const step of [1, 2, 7, 8, 9, 100, bytes.length]) {
      const d = new FrameDecoder();
      const frames = [];
      for (let at = 0; at < bytes.length; at += step) frames.push(...d.push(bytes.subarray(at, at + step)));
      assert.deepEqual(frames.map((f) => f.header), [{ a: 1 }, { ev: 'out', id: 'x' }, { b: 'é' }], `step ${step}`);
      assert.equal(frames[1]!.body.toString(), 'hello');
      assert.equal(frames[2]!.body.length, 3000);
      assert.equal(d.buffered, 0);
    }
  });

  it('refuse a prefix that claims more than the bounds, before buffering it', () => {
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(1, 0);
    huge.writeUInt32BE(MAX_BODY_BYTES + 1, 4);
    assert.throws(() => new FrameDecoder().push(huge), FrameError);
    const bigHeader = Buffer.alloc(8);
    bigHeader.writeUInt32BE(MAX_HEADER_BYTES + 1, 0);
    assert.throws(() => new FrameDecoder().push(bigHeader), /header length/);
    assert.throws(() => new FrameDecoder().push(Buffer.alloc(8)), /header length 0/);
  });

  it('refuse a header that is not a JSON object', () => {
    for (const text of ['nope', '[1,2]', '"s"', 'null', '{"a":']) {
      const json = Buffer.from(text);
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(json.length, 0);
      assert.throws(() => new FrameDecoder().push(Buffer.concat([prefix, json])), FrameError, text);
    }
  });

  it('will not encode a frame the other side would refuse', () => {
    assert.throws(() => encodeFrame({}, Buffer.alloc(MAX_BODY_BYTES + 1)), RangeError);
    assert.throws(() => encodeFrame({ s: 'x'.repeat(MAX_HEADER_BYTES) }), RangeError);
  });
});
