import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { canonicalJson, checkImageSpec, parseImageId, resolveImage } from './image-spec.js';

const invalid = (e: unknown) => isStowageError(e, 'InvalidArgument');

describe('image descriptions and their ids', () => {
  it('names one description with one id whatever its key order, and another for any change', async () => {
    const a = await resolveImage({ base: 'debian', steps: [{ env: { A: '1', B: '2' } }, { aptInstall: ['curl'] }] });
    const b = await resolveImage({ steps: [{ env: { B: '2', A: '1' } }, { aptInstall: ['curl'] }], base: 'debian' });
    assert.equal(a.id, b.id);
    assert.match(a.id, /^[0-9a-f]{64}$/);
    const others = await Promise.all([
      resolveImage({ base: 'busybox', steps: [{ env: { A: '1', B: '2' } }, { aptInstall: ['curl'] }] }),
      resolveImage({ base: 'debian', steps: [{ aptInstall: ['curl'] }, { env: { A: '1', B: '2' } }] }),
      resolveImage({ base: 'debian', steps: [{ env: { A: '1', B: '3' } }, { aptInstall: ['curl'] }] }),
      resolveImage({ base: 'debian' }),
    ]);
    assert.equal(new Set([a.id, ...others.map((o) => o.id)]).size, 5);
    assert.equal((await resolveImage({ base: 'debian' })).id, (await resolveImage({ base: 'debian', steps: [] })).id);
    assert.equal(canonicalJson({ b: [1, { d: 1, c: 2 }], a: 'x' }), '{"a":"x","b":[1,{"c":2,"d":1}]}');
  });

  it('refuses hostile descriptions with a message naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ base: 'alpine' }, /base/],
      [{ base: 'debian', steps: [{ aptInstall: ['-o', 'APT::Get::x=1'] }] }, /steps\.0\.aptInstall\.0/],
      [{ base: 'debian', steps: [{ aptInstall: ['curl; rm -rf /'] }] }, /Debian package name/],
      [
        {
          base: 'debian',
          steps: [
            { runCommands: ['echo deb http://evil/ x y > /etc/apt/sources.list.d/x.list'] },
            { aptInstall: ['curl'] },
          ],
        },
        /steps\.1: aptInstall must come before any runCommands or copy step/,
      ],
      [
        {
          base: 'debian',
          steps: [{ copy: { from: 'a', to: '/etc/apt/apt.conf.d/99hook' } }, { aptInstall: ['curl'] }],
        },
        /steps\.1/,
      ],
      [{ base: 'debian', steps: [{ aptInstall: [] }] }, /aptInstall/],
      [{ base: 'debian', steps: [{ runCommands: ['echo \0'] }] }, /NUL/],
      [{ base: 'debian', steps: [{ env: { 'A=B': 'x' } }] }, /steps\.0\.env\.A=B/],
      [{ base: 'debian', steps: [{ copy: { from: '../etc/shadow', to: '/x' } }] }, /build context/],
      [{ base: 'debian', steps: [{ copy: { from: '/etc/shadow', to: '/x' } }] }, /build context/],
      [{ base: 'debian', steps: [{ copy: { from: 'a', to: 'relative' } }] }, /absolute/],
      [{ base: 'debian', steps: [{ copy: { from: 'a', to: '/a/../../b' } }] }, /normalised/],
      [{ base: 'debian', steps: [{ copy: { from: 'a', to: '/' } }] }, /other than \//],
      [{ base: 'debian', steps: [{ aptInstall: ['x'], runCommands: ['y'] }] }, /steps\.0/],
      [{ base: 'debian', extra: 1 }, /root|extra/i],
      [{ base: 'debian', steps: Array.from({ length: 101 }, () => ({ env: {} })) }, /steps/],
    ];
    for (const [spec, message] of bad) {
      assert.throws(
        () => checkImageSpec(spec),
        (e: Error) => invalid(e) && message.test(e.message),
        JSON.stringify(spec).slice(0, 120),
      );
    }
    assert.throws(() => parseImageId('../../etc'), invalid);
    assert.equal(parseImageId('a'.repeat(64)), 'a'.repeat(64));
  });

  it('addresses a copy step by the content it copies, and refuses sources outside the build context', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-spec-'));
    try {
      const ctx = join(dir, 'ctx');
      await mkdir(join(ctx, 'app'), { recursive: true });
      await writeFile(join(ctx, 'app', 'main.py'), 'print(1)');
      await writeFile(join(dir, 'secret'), 'host secret');
      const spec = { base: 'busybox' as const, steps: [{ copy: { from: 'app', to: '/opt/app' } }] };
      const first = await resolveImage(spec, ctx);
      assert.equal((await resolveImage(spec, ctx)).id, first.id);
      assert.equal(first.copySources[0], join(ctx, 'app'));
      await writeFile(join(ctx, 'app', 'main.py'), 'print(2)');
      assert.notEqual((await resolveImage(spec, ctx)).id, first.id, 'changed content, new image');
      await assert.rejects(resolveImage(spec), (e: Error) => invalid(e) && /needs a build context/.test(e.message));
      await symlink(join(dir, 'secret'), join(ctx, 'link'));
      await assert.rejects(
        resolveImage({ base: 'busybox', steps: [{ copy: { from: 'link', to: '/x' } }] }, ctx),
        (e: Error) => invalid(e) && /out of the build context/.test(e.message),
      );
      await assert.rejects(
        resolveImage({ base: 'busybox', steps: [{ copy: { from: 'missing', to: '/x' } }] }, ctx),
        (e: Error) => invalid(e) && /does not exist/.test(e.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
