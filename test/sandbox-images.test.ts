/**
 * Sandbox images for real: mmdebstrap from the host's apt mirror, the uid
 * shift, steps under bwrap as sandbox root, the per-machine cache
 * (test/helpers/sandbox-images.ts) and the build lock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { ImageStore } from '../src/sandbox/host/images.js';
import { resolveImage } from '../src/sandbox/host/image-spec.js';
import { busyboxImage, debianImage, TEST_IMAGES_DATA_DIR, testImageStore } from './helpers/sandbox-images.js';

/** A step no other test uses, so its image is built by this run. */
const fresh = (what: string) => `echo ${what} ${process.pid}-${Date.now()}-${Math.random()}`;

describe('sandbox images', () => {
  it('builds the default Debian image once per machine: /bin/sh and apt inside, every file shifted to the subordinate range, a later request a cache hit', async () => {
    const t0 = performance.now();
    const image = await debianImage();
    const buildMs = performance.now() - t0;
    for (const p of ['bin/sh', 'usr/bin/apt-get', 'usr/bin/dpkg', 'etc/debian_version']) {
      assert.ok(existsSync(join(image.root, p)), `${p} in the image`);
    }
    assert.match(await readFile(join(image.root, 'etc', 'debian_version'), 'utf8'), /^12\./);
    // Every file's owner is in 100000..165535: the sandbox's root maps to 100000.
    let checked = 0;
    const walk = async (dir: string) => {
      for (const name of await readdir(dir)) {
        const st = await lstat(join(dir, name));
        assert.ok(!st.isCharacterDevice() && !st.isBlockDevice(), `${join(dir, name)} is a device node`);
        assert.ok(
          st.uid >= 100000 && st.uid < 165536 && st.gid >= 100000 && st.gid < 165536,
          `${join(dir, name)} owned by ${st.uid}:${st.gid}`,
        );
        checked++;
        if (st.isDirectory()) await walk(join(dir, name));
      }
    };
    await walk(image.root);
    assert.ok(checked > 5000, `a whole minbase (${checked} files)`);
    assert.equal(
      (await stat(join(image.root, 'usr', 'bin', 'su'))).mode & 0o4000,
      0o4000,
      'su keeps its setuid bit through the shift',
    );
    assert.equal((await stat(image.root)).uid, 100000);
    assert.match(await readFile(join(image.dir, 'build.log'), 'utf8'), /mmdebstrap/);
    // A new store (as after a daemon restart) on the same cache answers at once.
    const t1 = performance.now();
    const again = await testImageStore().ensure({ base: 'debian', steps: [] });
    const hitMs = performance.now() - t1;
    assert.equal(again.cached, true);
    assert.equal(again.image.root, image.root);
    assert.ok(hitMs < 1000, `cache hit took ${hitMs} ms`);
    console.log(
      `debian image: ${Math.round(buildMs)} ms this run (${image.buildMs} ms when built, uid shift ${image.shiftMs ?? '-'} ms); cache hit ${hitMs.toFixed(1)} ms`,
    );
  });

  it('runs steps in order as sandbox root: env for later steps and the image, copies from the build context, on the small busybox image', async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'stowage-ctx-'));
    try {
      await mkdir(join(ctx, 'app'));
      await writeFile(join(ctx, 'app', 'run.sh'), '#!/bin/sh\necho app\n', { mode: 0o755 });
      await writeFile(join(ctx, 'note.txt'), 'note');
      const marker = fresh('steps');
      const logs: string[] = [];
      const { image, cached } = await testImageStore().ensure(
        {
          base: 'busybox',
          steps: [
            { env: { GREETING: 'hello' } },
            { runCommands: [`${marker} > /marker`, 'echo "$GREETING $(id -u)" > /greeting'] },
            { copy: { from: 'app', to: '/opt/app' } },
            { copy: { from: 'note.txt', to: '/etc/note.txt' } },
          ],
        },
        { contextDir: ctx, onLog: (t) => logs.push(t) },
      );
      assert.equal(cached, false);
      assert.equal(
        await readFile(join(image.root, 'greeting'), 'utf8'),
        'hello 0\n',
        'the env step reached the command; it ran as root inside',
      );
      assert.equal((await stat(join(image.root, 'greeting'))).uid, 100000, 'written by sandbox root = host 100000');
      assert.equal(await readFile(join(image.root, 'opt', 'app', 'run.sh'), 'utf8'), '#!/bin/sh\necho app\n');
      assert.equal((await stat(join(image.root, 'opt', 'app', 'run.sh'))).mode & 0o777, 0o755);
      assert.equal((await stat(join(image.root, 'etc', 'note.txt'))).uid, 100000);
      assert.equal(image.env.GREETING, 'hello');
      assert.ok(logs.join('').includes('step 2/4 (runCommands[1]'), 'the log streamed step by step');
      assert.ok(
        (await readFile(join(image.dir, 'build.log'), 'utf8')).includes('step 4/4 (copy note.txt to /etc/note.txt)'),
      );
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
  });

  it('reports a failing step with its output and leaves no image, only its log', async () => {
    const store = testImageStore();
    const spec = {
      base: 'busybox' as const,
      steps: [{ runCommands: [fresh('fine'), 'echo "it broke here" >&2; exit 7'] }],
    };
    const { id } = await resolveImage(spec);
    await assert.rejects(store.ensure(spec), (e: Error) => {
      assert.ok(isStowageError(e, 'InvalidArgument'), String(e));
      assert.match(e.message, /step 1\/1 \(runCommands\[1\]: echo "it broke here"/);
      assert.match(e.message, /exited 7/);
      assert.match(e.message, /it broke here/);
      return true;
    });
    assert.equal(existsSync(join(store.dir, id)), false, 'no image');
    assert.deepEqual(
      (await readdir(store.dir)).filter((n) => n.includes(id)),
      [`${id}.failed.log`],
      'nothing but the log',
    );
    assert.match(await readFile(store.failedLogPath(id), 'utf8'), /it broke here/);
  });

  it('gives build commands no network: the host loopback (where the Stowage server listens) is out of reach', async () => {
    const server = createServer((_req, res) => res.end('reached'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const spec = {
        base: 'busybox' as const,
        steps: [{ runCommands: [`${fresh('net')}; wget -q -T 3 -O - http://127.0.0.1:${port}/`] }],
      };
      await assert.rejects(
        testImageStore().ensure(spec),
        (e: Error) => isStowageError(e, 'InvalidArgument') && !/reached/.test(e.message),
      );
    } finally {
      server.close();
    }
  });

  it('runs build commands under the sandbox seccomp filter and capability set', async () => {
    const store = testImageStore();
    const spec = {
      base: 'busybox' as const,
      steps: [
        {
          // Seccomp 2 is filter mode; CAP_SYS_ADMIN (bit 21) must be gone from the effective set.
          runCommands: [
            `${fresh('seccomp')}; grep -q '^Seccomp:[[:space:]]*2' /proc/self/status || { echo no-filter; exit 1; }; caps=$(grep '^CapEff' /proc/self/status | cut -f2); [ $(( 0x$caps & (1 << 21) )) -eq 0 ] || { echo has-sys-admin; exit 1; }`,
          ],
        },
      ],
    };
    const { image } = await store.ensure(spec);
    assert.ok(image.id);
  });

  it('builds an image once when two stores (two daemons) ask for it at the same time', async () => {
    const spec = { base: 'busybox' as const, steps: [{ runCommands: [`${fresh('once')} >> /built`] }] };
    const logs = [[], []] as string[][];
    const [a, b] = await Promise.all(
      [0, 1].map((i) =>
        new ImageStore({ dataDir: TEST_IMAGES_DATA_DIR }).ensure(spec, { onLog: (t) => logs[i]!.push(t) }),
      ),
    );
    assert.equal(a!.image.id, b!.image.id);
    assert.deepEqual([a!.cached, b!.cached].sort(), [false, true], 'one built, the other waited for it');
    assert.equal(
      (await readFile(join(a!.image.root, 'built'), 'utf8')).split('\n').filter(Boolean).length,
      1,
      'the step ran once',
    );
    assert.equal(logs.filter((l) => l.join('').includes('==> image')).length, 1);
  });

  it('the busybox test image has a shell and core tools for fast tests of later pieces', async () => {
    const image = await busyboxImage();
    // Applet links are absolute (/bin/sh -> /bin/busybox): they resolve inside the sandbox, not on the host.
    for (const p of ['bin/sh', 'bin/ls', 'usr/bin/wget'])
      assert.equal((await lstat(join(image.root, p))).isSymbolicLink(), true, p);
    for (const p of ['bin/busybox', 'etc/passwd']) assert.ok(existsSync(join(image.root, p)), p);
    assert.equal((await lstat(join(image.root, 'bin', 'busybox'))).uid, 100000);
  });
});
