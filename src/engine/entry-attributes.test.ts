/**
 * @module engine/entry-attributes.test
 * Owners (uid/gid) and nanosecond atime/mtime/ctime in tree entries: their
 * encoding (old entries keep their bytes and hashes), validation, and how
 * put, mkdir, symlink, setattr, move, fork and restore treat them, on a real
 * SQLite metadata file.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, FileInfo } from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { parseChanges } from './change-set.js';
import { createEngine, type Engine } from './engine.js';
import { decodeTree, encodeTree, entryFingerprint, type Entry } from './tree/tree-codec.js';
import type { Actor } from './types.js';

const empty = { op: 'put' as const, size: 0, chunkSize: SMALL_CHUNK_SIZE, chunks: [] as string[] };

/** The attribute fields of a FileInfo (what the API shows beyond the old fields). */
function attrs(e: FileInfo): Record<string, number | undefined> {
  const { uid, gid, mtime, mtimeNs, atime, atimeNs, ctime, ctimeNs } = e;
  return Object.fromEntries(
    Object.entries({ uid, gid, mtime, mtimeNs, atime, atimeNs, ctime, ctimeNs }).filter(([, v]) => v !== undefined),
  );
}

describe('tree entry encoding with owners and nanosecond times', () => {
  it('decodes a leaf written before the fields existed and re-encodes it to the same bytes and hash', () => {
    // Bytes as the codec wrote them before owners and ns times: hashed here by hand, not by the codec under test.
    const old =
      '{"v":1,"entries":[{"type":"dir","name":"d","mode":493,"mtime":1700000000000,"tree":"' +
      'b'.repeat(64) +
      '","size":3,"fileCount":1},' +
      '{"type":"file","name":"f","mode":420,"mtime":1700000000123,"size":0,"chunkSize":' +
      SMALL_CHUNK_SIZE +
      ',"chunks":[]},' +
      '{"type":"symlink","name":"l","mode":511,"mtime":5,"target":"f"}]}';
    const hash = createHash('sha256').update('stowage-tree:v1\n').update(old).digest('hex') as TreeHash;
    const node = decodeTree(hash, Buffer.from(old));
    assert.equal(node.kind, 'leaf');
    const again = encodeTree(node.kind === 'leaf' ? node.entries : []);
    assert.equal(Buffer.from(again.data).toString(), old);
    assert.equal(again.hash, hash);
  });

  it('drops attributes equal to their defaults, so spelling them out changes no byte', () => {
    const plain: Entry = {
      type: 'file',
      name: 'f',
      mode: 0o644,
      mtime: 1000,
      size: 0,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks: [],
    };
    const spelt: Entry = { ...plain, mtimeNs: 0, atime: 1000, atimeNs: 0, ctime: 1000, ctimeNs: 0 };
    assert.equal(encodeTree([spelt]).hash, encodeTree([plain]).hash);
    // atime absent means "mtime with its ns": the same instant spelt out is still the default.
    assert.equal(
      encodeTree([{ ...plain, mtimeNs: 7, atime: 1000, atimeNs: 7 }]).hash,
      encodeTree([{ ...plain, mtimeNs: 7 }]).hash,
    );
    assert.notEqual(
      encodeTree([{ ...plain, mtimeNs: 7, atime: 1000 }]).hash,
      encodeTree([{ ...plain, mtimeNs: 7 }]).hash,
      'atime ns 0 differs from mtime ns 7',
    );
  });

  it('round-trips every field through encode and decode, and a different owner is a different entry', () => {
    const full: Entry = {
      type: 'symlink',
      name: 'l',
      mode: 0o777,
      mtime: -5,
      target: 'x',
      uid: 0,
      gid: 4294967294,
      mtimeNs: 1,
      atime: 8.64e15,
      atimeNs: 999999,
      ctime: 3,
      ctimeNs: 2,
    };
    const enc = encodeTree([full]);
    const dec = decodeTree(enc.hash, enc.data);
    assert.deepEqual(dec.kind === 'leaf' ? dec.entries[0] : undefined, full);
    assert.notEqual(entryFingerprint({ ...full, uid: 1 }), entryFingerprint(full));
    assert.notEqual(entryFingerprint({ ...full, gid: undefined }), entryFingerprint(full));
  });
});

describe('change validation of owners and times', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...empty, path: '/f', uid: -1 }, /uid must be a whole number between 0 and 4294967294/],
    [{ ...empty, path: '/f', uid: 4294967295 }, /uid must be/],
    [{ ...empty, path: '/f', gid: 1.5 }, /gid must be/],
    [{ ...empty, path: '/f', uid: '0' }, /uid must be/],
    [{ ...empty, path: '/f', mtime: 1, mtimeNs: 1_000_000 }, /mtimeNs must be .* between 0 and 999999/],
    [{ ...empty, path: '/f', mtime: 1, mtimeNs: -1 }, /mtimeNs must be/],
    [{ ...empty, path: '/f', mtimeNs: 5 }, /mtimeNs needs mtime/],
    [{ ...empty, path: '/f', atime: 8.64e15 + 1 }, /atime must be a whole number of milliseconds/],
    [{ ...empty, path: '/f', ctime: Number.MAX_VALUE }, /ctime must be/],
    [{ ...empty, path: '/f', mtime: 1e300 }, /mtime must be/],
    [{ ...empty, path: '/f', atime: 1.5 }, /atime must be/],
    [{ op: 'mkdir', path: '/d', ctimeNs: 3 }, /ctimeNs needs ctime/],
    [{ op: 'symlink', path: '/l', target: 'x', gid: null }, /gid must be/],
    [{ op: 'setattr', path: '/f', uid: -1 }, /uid must be/],
    [{ op: 'setattr', path: '/f', atimeNs: 1 }, /atimeNs needs atime/],
    [{ op: 'delete', path: '/f', uid: 0 }, /delete takes no uid; set attributes with put, mkdir, symlink or setattr/],
    [{ op: 'move', from: '/a', to: '/b', mtime: 1, gid: 0 }, /move takes no gid, mtime/],
  ];
  for (const [change, message] of bad) {
    it(`refuses ${JSON.stringify(change)}`, async () => {
      await assert.rejects(
        parseChanges([{ op: 'mkdir', path: '/ok' }, change as unknown as Change], 0),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'InvalidArgument');
          assert.match(e.message, /^changes\[1\]: /);
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }

  it('accepts the bounds and pre-epoch times', async () => {
    const [put, set] = await parseChanges(
      [
        {
          ...empty,
          path: '/f',
          uid: 0,
          gid: 4294967294,
          mtime: -8.64e15,
          mtimeNs: 999999,
          atime: 8.64e15,
          atimeNs: 0,
          ctime: 0,
          ctimeNs: 1,
        },
        { op: 'setattr', path: '/f', uid: null, gid: null },
      ],
      0,
    );
    assert.equal(put!.op === 'put' ? put!.entry.uid : -1, 0);
    assert.deepEqual(set, { op: 'setattr', path: '/f', uid: null, gid: null });
  });
});

interface World {
  dir: string;
  md: MetadataStore;
  engine: Engine;
  actor: Actor;
  clock: { t: number };
}

describe('engine: owners and times through put, mkdir, symlink, setattr, move, fork', () => {
  let w: World;
  const T = 1_700_000_000_000;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stowage-attrs-'));
    const md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
    const clock = { t: Date.now() };
    const engine = createEngine({ metadata: md, blobs: new MemoryBlobStore(), now: () => new Date(clock.t) });
    const { secret } = await engine.createTenant('acme');
    w = { dir, md, engine, actor: await engine.authenticate(secret), clock };
    await engine.createVolume(w.actor, 'v');
  });
  after(async () => {
    await w.md.close();
    rmSync(w.dir, { recursive: true, force: true });
  });
  const commit = (changes: Change[], base?: string, onConflict?: 'fail') =>
    w.engine.commit(w.actor, 'v', { changes, ...(base ? { base } : {}), ...(onConflict ? { onConflict } : {}) });
  const stat = async (p: string, vol = 'v') => (await w.engine.stat(w.actor, vol, p)).entry;

  it('records every field given to put, symlink and mkdir, and shows them in stat and list', async () => {
    const full = {
      uid: 1000,
      gid: 100,
      mtime: T,
      mtimeNs: 123456,
      atime: T + 1,
      atimeNs: 7,
      ctime: T + 2,
      ctimeNs: 999999,
    };
    await commit([
      { ...empty, path: '/f', ...full },
      { op: 'symlink', path: '/l', target: 'f', ...full, uid: 0, gid: 0 },
      { op: 'mkdir', path: '/p/q', mode: 0o700, ...full },
    ]);
    assert.deepEqual(attrs(await stat('/f')), full);
    assert.deepEqual(attrs(await stat('/l')), { ...full, uid: 0, gid: 0 });
    assert.deepEqual(attrs(await stat('/p/q')), full);
    // Parents a mkdir creates on the way get its mode, times and owner, as they get its mode today.
    assert.deepEqual(attrs(await stat('/p')), full);
    assert.equal((await stat('/p')).mode, 0o700);
    const listed = (await w.engine.list(w.actor, 'v', '/', { recursive: true })).entries.find((e) => e.path === '/f')!;
    assert.deepEqual(attrs(listed), full);
    // Without the new fields the API shows none of them (absent atime/ctime: the same as mtime).
    await commit([{ ...empty, path: '/plain', mtime: T }]);
    assert.deepEqual(attrs(await stat('/plain')), { mtime: T });
  });

  it('setattr changes only what it is given: mtime alone leaves atime and ctime, null removes the owner', async () => {
    await commit([{ ...empty, path: '/s', mtime: T, mtimeNs: 5 }]);
    await commit([{ op: 'setattr', path: '/s', mtime: T + 10, mtimeNs: 6, ctime: T + 11 }]);
    assert.deepEqual(attrs(await stat('/s')), { mtime: T + 10, mtimeNs: 6, atime: T, atimeNs: 5, ctime: T + 11 });
    await commit([{ op: 'setattr', path: '/s', uid: 7, gid: 8 }]);
    assert.deepEqual(attrs(await stat('/s')), {
      uid: 7,
      gid: 8,
      mtime: T + 10,
      mtimeNs: 6,
      atime: T,
      atimeNs: 5,
      ctime: T + 11,
    });
    await commit([{ op: 'setattr', path: '/s', uid: null }]);
    assert.deepEqual(attrs(await stat('/s')), {
      gid: 8,
      mtime: T + 10,
      mtimeNs: 6,
      atime: T,
      atimeNs: 5,
      ctime: T + 11,
    });
    // A time without its ns sets ns 0.
    await commit([{ op: 'setattr', path: '/s', atime: T + 10, mtime: T + 10, gid: null }]);
    assert.deepEqual(attrs(await stat('/s')), { mtime: T + 10, ctime: T + 11 });
    // Symlinks too.
    await commit([
      { op: 'symlink', path: '/sl', target: 's', mtime: T },
      { op: 'setattr', path: '/sl', uid: 11, atime: T + 5, atimeNs: 1 },
    ]);
    assert.deepEqual(attrs(await stat('/sl')), { uid: 11, mtime: T, atime: T + 5, atimeNs: 1 });
    // Directories keep them too; the atime the mkdir gave (now) stays where it was.
    await commit([
      { op: 'mkdir', path: '/dd' },
      { op: 'setattr', path: '/dd', uid: 3, gid: 4, mtime: T, ctime: T, ctimeNs: 1 },
    ]);
    assert.deepEqual(attrs(await stat('/dd')), { uid: 3, gid: 4, mtime: T, atime: w.clock.t, ctime: T, ctimeNs: 1 });
    // Setting nothing changes nothing (no new tree); a missing path is NotFound.
    const before = (await w.engine.getVolume(w.actor, 'v')).head;
    const same = await commit([{ op: 'setattr', path: '/s' }]);
    assert.equal(same.commit.tree, (await w.md.getCommit(before as never))!.tree);
    await assert.rejects(commit([{ op: 'setattr', path: '/missing', uid: 0 }]), { code: 'NotFound' });
  });

  it('a put that replaces a file keeps nothing of the old entry unless given; an edit keeps the owner', async () => {
    await commit([{ ...empty, path: '/r', uid: 0, gid: 0, mtime: T, atime: T - 1, ctime: T + 1 }]);
    w.clock.t = T + 5000;
    await commit([{ ...empty, path: '/r' }]);
    assert.deepEqual(attrs(await stat('/r')), { mtime: T + 5000 });
    await commit([{ ...empty, path: '/r', uid: 5 }]);
    assert.equal((await stat('/r')).uid, 5);
    // An edit writes into the file: mode and owner stay, times are now.
    await w.engine.writeFile(
      w.actor,
      'v',
      '/e',
      (async function* () {
        yield Buffer.from('hello world');
      })(),
      { mode: 0o600 },
    );
    await commit([{ op: 'setattr', path: '/e', uid: 9, gid: 10, atime: T }]);
    w.clock.t = T + 9000;
    await w.engine.edit(w.actor, 'v', '/e', { oldString: 'world', newString: 'there' });
    assert.deepEqual(
      { mode: (await stat('/e')).mode, ...attrs(await stat('/e')) },
      { mode: 0o600, uid: 9, gid: 10, mtime: T + 9000 },
    );
  });

  it('moves, snapshots, restores and forks keep owners and times', async () => {
    const full = { uid: 42, gid: 43, mtime: T, mtimeNs: 1, atime: T + 1, atimeNs: 2, ctime: T + 3, ctimeNs: 4 };
    await commit([
      { ...empty, path: '/m/a', ...full },
      { op: 'mkdir', path: '/m/sub', ...full },
    ]);
    await commit([{ op: 'move', from: '/m', to: '/moved' }]);
    assert.deepEqual(attrs(await stat('/moved/a')), full);
    assert.deepEqual(attrs(await stat('/moved/sub')), full);
    await w.engine.createSnapshot(w.actor, 'v', { name: 'attrs' });
    await commit([{ op: 'setattr', path: '/moved/a', uid: null, gid: null }]);
    await w.engine.fork(w.actor, 'v', { name: 'v-fork', snapshot: 'attrs' });
    assert.deepEqual(attrs(await stat('/moved/a', 'v-fork')), full);
    await w.engine.restore(w.actor, 'v', { snapshot: 'attrs' });
    assert.deepEqual(attrs(await stat('/moved/a')), full);
  });

  it('an owner-only or ns-only change is a change: the change feed reports it and onConflict "fail" refuses to overwrite it', async () => {
    const base = await commit([
      { ...empty, path: '/o', mtime: T },
      { op: 'mkdir', path: '/od', mtime: T },
    ]);
    const owner = await commit([
      { op: 'setattr', path: '/o', uid: 1 },
      { op: 'setattr', path: '/od', gid: 2 },
    ]);
    const ns = await commit([{ op: 'setattr', path: '/o', mtime: T, mtimeNs: 9 }]);
    const feed = await w.engine.changesSince(w.actor, 'v', base.commit.id);
    const byCommit = new Map(feed.commits.map((c) => [c.commit.id, c.changes.map((x) => `${x.kind} ${x.path}`)]));
    assert.deepEqual(byCommit.get(owner.commit.id), ['modified /o', 'modified /od']);
    assert.deepEqual(byCommit.get(ns.commit.id), ['modified /o']);
    // A writer based before the owner change would overwrite it: reported, or refused with "fail".
    await assert.rejects(commit([{ op: 'setattr', path: '/o', mode: 0o600 }], base.commit.id, 'fail'), {
      code: 'Conflict',
    });
    const over = await commit([{ op: 'setattr', path: '/od', mode: 0o700 }], base.commit.id);
    assert.deepEqual(over.overwritten, ['/od']);
  });

  it('a commit without the new fields makes the tree it made before they existed', async () => {
    await w.engine.createVolume(w.actor, 'legacy');
    const r = await w.engine.commit(w.actor, 'legacy', {
      changes: [{ ...empty, path: '/x', mode: 0o644, mtime: 1000 }],
    });
    // The root leaf holds one entry in the old format, byte for byte.
    const leaf = `{"v":1,"entries":[{"type":"file","name":"x","mode":420,"mtime":1000,"size":0,"chunkSize":${SMALL_CHUNK_SIZE},"chunks":[]}]}`;
    assert.equal(r.commit.tree, createHash('sha256').update('stowage-tree:v1\n').update(leaf).digest('hex'));
  });
});
