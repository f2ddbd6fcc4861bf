import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isPackKey, newObjectKey, OBJECT_KEY_PREFIXES, parseObjectKey } from './object-keys.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('object keys (model/object-keys)', () => {
  it('builds a fresh key per upload that parses back to its kind and hash', () => {
    const h = sha('a');
    const a = newObjectKey('chunk', h);
    const b = newObjectKey('chunk', h);
    assert.notEqual(a, b, 'two uploads of the same content never share a key');
    assert.match(a, new RegExp(`^chunks/${h.slice(0, 2)}/${h}-[0-9a-f]{16}$`));
    assert.deepEqual(parseObjectKey(a), { kind: 'chunk', sha256: h });
    const p = newObjectKey('pack', h);
    assert.match(p, /^packs\//);
    assert.deepEqual(parseObjectKey(p), { kind: 'pack', sha256: h });
    assert.ok(isPackKey(p) && !isPackKey(a));
    assert.ok(OBJECT_KEY_PREFIXES.every((prefix) => a.startsWith(prefix) || p.startsWith(prefix)));
    assert.deepEqual([...OBJECT_KEY_PREFIXES].sort(), ['chunks/', 'packs/']);
  });

  it('refuses keys it did not issue: wrong fan-out, short suffix, traversal, other prefixes, upper case', () => {
    const h = sha('b');
    const good = newObjectKey('chunk', h);
    const suffix = good.slice(good.lastIndexOf('-'));
    for (const bad of [
      `chunks/00/${h}${suffix}`.replace('/00/', h.startsWith('00') ? '/01/' : '/00/'), // fan-out not the hash's first two digits
      `chunks/${h.slice(0, 2)}/${h}-abc`,
      `chunks/${h.slice(0, 2)}/${h}`,
      `chunks/${h.slice(0, 2)}/../${h}${suffix}`,
      `blobs/${h.slice(0, 2)}/${h}${suffix}`,
      good.toUpperCase(),
      `${good}/x`,
      `x/${good}`,
      '',
    ])
      assert.equal(parseObjectKey(bad), undefined, bad);
  });
});
