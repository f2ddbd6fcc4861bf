/**
 * Which of a mount's committed paths later commits of others overwrote,
 * over a real overlay db and a scripted change feed: the paths a commit
 * leaves written, exact and below-a-directory matches (never a sibling that
 * only shares a prefix), commits merged before ours and our own rewrites not
 * counted, paging, persistence, and a server that cannot be asked.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import { OverlayStore } from './overlay-store.js';
import { OverwriteWatch, writtenPaths } from './overwrites.js';

type FeedCommit = wire.ChangesResponse['commits'][number];

const put = (path: string): wire.Change => ({ op: 'put', path, size: 0, chunkSize: 4096, chunks: [] });
const ch = (
  path: string,
  kind: 'added' | 'modified' | 'deleted' = 'modified',
  type: 'file' | 'dir' | 'symlink' = 'file',
) => ({ path, kind, type });

describe('writtenPaths', () => {
  it('keeps what the commit leaves written: moves rebase, deletes and moved-away paths drop, prefix siblings survive', () => {
    const got = writtenPaths([
      put('/a/f'),
      put('/ab'),
      { op: 'mkdir', path: '/d' },
      put('/d/x'),
      { op: 'symlink', path: '/l', target: '/ab' },
      { op: 'move', from: '/d', to: '/e', overwrite: true },
      put('/tmp'),
      { op: 'delete', path: '/tmp' },
      { op: 'delete', path: '/a' },
      { op: 'setattr', path: '/base-file', mode: 0o600 },
    ]);
    assert.deepEqual(got.sort(), ['/ab', '/base-file', '/e', '/e/x', '/l']);
  });

  it('stays fast on 50,000 puts and 20,000 deletes', () => {
    const changes: wire.Change[] = [];
    for (let i = 0; i < 50_000; i++) changes.push(put(`/d${i % 50}/f${i}`));
    for (let i = 0; i < 20_000; i++) changes.push({ op: 'delete', path: `/d${i % 50}/f${i}` });
    const t = Date.now();
    assert.equal(writtenPaths(changes).length, 30_000);
    assert.ok(Date.now() - t < 2_000, `${Date.now() - t} ms`);
  });
});

describe('OverwriteWatch', () => {
  let dir: string;
  let store: OverlayStore;
  let feed: FeedCommit[];
  let asked: string[];
  let down: boolean;
  const logs: string[] = [];
  const fetch = async (since: string, limit: number): Promise<wire.ChangesResponse> => {
    if (down) throw new Error('connect ECONNREFUSED');
    asked.push(since);
    const from = feed.findIndex((c) => c.id === since);
    if (from < 0) throw new Error(`unknown commit ${since}`);
    return { head: feed.at(-1)!.id, commits: feed.slice(from + 1, from + 1 + limit) };
  };
  const commit = (id: string, changes: FeedCommit['changes'], truncated = false): FeedCommit => {
    const c = { id, seq: feed.length + 1, changes, truncated };
    feed.push(c);
    return c;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-ow-'));
    store = OverlayStore.open(dir);
    feed = [];
    asked = [];
    down = false;
    commit('c-base', []);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports exact and below-a-directory overwrites of later commits only, once, and reads the feed from where it stopped', async () => {
    const watch = new OverwriteWatch(store, fetch, (m) => logs.push(m));
    assert.deepEqual(await watch.check(), [], 'no own commit: the server is not asked');
    assert.deepEqual(asked, []);
    commit('c-merged', [ch('/x')]); // another writer, before our commit: our commit merged it
    const mine = commit('c-mine', []);
    watch.recorded(mine, [put('/x'), put('/keep'), { op: 'mkdir', path: '/dir' }, put('/dir/f'), put('/ab')]);
    commit('c-other', [ch('/x'), ch('/y', 'added'), ch('/a', 'deleted', 'dir'), ch('/ab0', 'added')]);
    commit('c-rmdir', [ch('/dir', 'deleted', 'dir')], true); // truncated: the entry below is not listed, the directory is
    assert.deepEqual(await watch.check(), [
      { path: '/dir', commit: 'c-rmdir' },
      { path: '/dir/f', commit: 'c-rmdir' },
      { path: '/x', commit: 'c-other' },
    ]);
    assert.ok(logs.some((l) => /more paths than the feed lists/.test(l)));
    asked = [];
    await watch.check();
    assert.deepEqual(asked, ['c-rmdir'], 'the next look starts after the last commit seen');

    // We write /x again: it is ours again. A commit of ours in the feed is never an overwrite.
    const again = commit('c-mine2', [ch('/keep')]);
    watch.recorded(again, [put('/x')]);
    assert.deepEqual(
      (await watch.check()).map((o) => o.path),
      ['/dir', '/dir/f'],
    );

    // Kept in the overlay db: a new agent (a restart) sees the same.
    const reopened = new OverwriteWatch(store, fetch, () => undefined);
    assert.deepEqual(
      (await reopened.check()).map((o) => o.path),
      ['/dir', '/dir/f'],
    );
    reopened.clear();
    assert.deepEqual(await reopened.check(), []);
  });

  it("never takes a commit of its own that is still landing for someone else's", async () => {
    const watch = new OverwriteWatch(store, fetch, () => undefined);
    watch.recorded(commit('c-mine', []), [put('/p')]);
    // A look starts, then a commit of ours lands on the server before the look's page arrives.
    let release!: () => void;
    const slow = new OverwriteWatch(
      store,
      async (since, limit) => {
        await new Promise<void>((r) => {
          release = r;
        });
        return fetch(since, limit);
      },
      () => undefined,
    );
    const look = slow.check();
    const landing = slow.during(async () => {
      const c = commit('c-mine2', [ch('/p')]); // the server has it; it is not recorded yet
      release();
      assert.deepEqual(await look, [], 'the look under way does not count it');
      assert.deepEqual(await slow.check(), [], 'nor does a look while it is recorded');
      slow.recorded(c, [put('/p')]);
    });
    await landing;
    assert.deepEqual(await watch.check(), [], 'once recorded it is ours: /p was not overwritten');
  });

  it('pages through long feeds, and answers from what it found when the server cannot be asked', async () => {
    const watch = new OverwriteWatch(store, fetch, (m) => logs.push(m));
    watch.recorded(commit('c-mine', []), [put('/p')]);
    for (let i = 0; i < 250; i++) commit(`c${i}`, [ch(`/other${i}`)]);
    commit('c-last', [ch('/p')]);
    assert.deepEqual(await watch.check(), [{ path: '/p', commit: 'c-last' }]);
    assert.equal(asked.length, 3, 'three pages of 100');
    down = true;
    assert.deepEqual(await watch.check(), [{ path: '/p', commit: 'c-last' }]);
    await assert.rejects(watch.check({ strict: true }), /ECONNREFUSED/);
  });
});
