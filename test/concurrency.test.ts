/**
 * Eight independent SDK clients commit to one volume at once over real HTTP:
 * different paths must all merge, the same path must end last-writer-wins in
 * the order the server accepted the commits, and no commit may be lost.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { Stowage, Volume } from '@stowage/sdk';
import { startTestServer, type TestServer } from './helpers/server.js';

const CLIENTS = 8;

describe('concurrent writers over HTTP', () => {
  let srv: TestServer;
  let handles: Volume[];

  before(async () => {
    srv = await startTestServer();
    // Each writer is its own client, as separate processes would be.
    handles = await Promise.all(
      Array.from({ length: CLIENTS }, () =>
        Volume.get('shared-work', {
          mintIfMissing: true,
          accessMode: 'RWX',
          client: new Stowage({ url: srv.url, token: srv.token }),
        }),
      ),
    );
  });
  after(async () => {
    await srv.close();
  });

  it('gives every concurrent getOrCreate the same volume', () => {
    assert.equal(new Set(handles.map((h) => h.id)).size, 1);
  });

  it('merges commits on different paths and loses none', async () => {
    const before = (await handles[0]!.history({ limit: 1 })).commits[0]!.seq;
    await Promise.all(
      handles.map(async (vol, i) => {
        for (let j = 0; j < 5; j++) await vol.files.write(`/writer-${i}/file-${j}.txt`, `writer ${i} file ${j}`);
      }),
    );
    const files = (await handles[0]!.files.list('/', { recursive: true })).filter((f) => f.type === 'file');
    assert.equal(files.length, CLIENTS * 5);
    for (const f of files) {
      const [, i, j] = /^\/writer-(\d)\/file-(\d)\.txt$/.exec(f.path)!;
      assert.equal((await handles[0]!.files.read(f.path)).toString(), `writer ${i} file ${j}`);
    }
    const history = await handles[0]!.history({ limit: 100 });
    assert.equal(history.commits[0]!.seq - before, CLIENTS * 5, 'one commit per write, none lost');
  });

  it('resolves the same path last-writer-wins and reports each overwrite', async () => {
    const vol = handles[0]!;
    const contents = handles.map((_, i) => `version from writer ${i}`);
    // Store every version's chunk first so the racing commits carry metadata only.
    for (let i = 0; i < CLIENTS; i++) await vol.files.write(`/versions/${i}`, contents[i]!);
    const base = (await vol.refresh()).head;
    const results = await Promise.all(
      handles.map((h, i) =>
        h.commitChanges(
          [
            {
              op: 'put',
              path: '/shared.txt',
              size: Buffer.byteLength(contents[i]!),
              chunkSize: SMALL_CHUNK_SIZE,
              chunks: [createHash('sha256').update(contents[i]!).digest('hex')],
            },
          ],
          { base, message: `writer ${i}` },
        ),
      ),
    );

    const bySeq = results
      .map((r, i) => ({ seq: r.commit.seq, i, overwritten: r.overwritten }))
      .sort((a, b) => a.seq - b.seq);
    assert.deepEqual(
      bySeq.map((r) => r.seq),
      Array.from({ length: CLIENTS }, (_, k) => bySeq[0]!.seq + k),
      'consecutive: none lost',
    );
    assert.deepEqual(bySeq[0]!.overwritten, [], 'the first accepted overwrote nothing');
    for (const r of bySeq.slice(1))
      assert.deepEqual(r.overwritten, ['/shared.txt'], 'later ones say what they overwrote');
    const winner = bySeq.at(-1)!.i;
    assert.equal((await vol.files.read('/shared.txt')).toString(), contents[winner]);
    // Every overwritten version is still readable at its own commit.
    for (let k = 0; k < CLIENTS; k++) {
      assert.equal((await vol.files.read('/shared.txt', { commit: results[k]!.commit.id })).toString(), contents[k]);
    }
  });
});
