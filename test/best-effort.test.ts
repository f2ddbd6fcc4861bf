/**
 * @module test/best-effort.test
 * End-to-end tests of best-effort commits over real loopback HTTP: a mount's
 * commit replays its overlay onto a head that other commits moved, and the
 * changes that no longer apply there are skipped and reported while the rest
 * land; without `bestEffort` the same commit fails and publishes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { Stowage, Volume } from '@stowage/sdk';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let client: Stowage;

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
});
after(async () => {
  await srv?.close();
});

async function postCommit(volume: string, body: wire.CommitRequest): Promise<{ status: number; body: any }> {
  const res = await fetch(`${srv.url}/v1/volumes/${volume}/commits`, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const emptyFile = (path: string): wire.Change => ({
  op: 'put',
  path,
  size: 0,
  chunkSize: SMALL_CHUNK_SIZE,
  chunks: [],
});

/** A volume whose head moved under a mount based on `base`: /src/a deleted, /dir turned into a file. */
async function movedHead(name: string): Promise<{ vol: Volume; base: string }> {
  const vol = await Volume.create(name, { client });
  await vol.files.write('/src/a', 'a');
  await vol.files.write('/dir/x', 'x');
  const base = (await vol.files.write('/keep', 'k')).commit.id;
  await vol.commitChanges([
    { op: 'delete', path: '/src/a' },
    { op: 'delete', path: '/dir', recursive: true },
  ]);
  await vol.files.write('/dir', 'now a file');
  return { vol, base };
}

const replay: wire.Change[] = [
  { op: 'move', from: '/src/a', to: '/dst/a' },
  { op: 'setattr', path: '/missing', mode: 0o600 },
  emptyFile('/dir/y'),
  emptyFile('/new'),
  { op: 'setattr', path: '/keep', mode: 0o600 },
];

describe('best-effort commits over HTTP', () => {
  it('skips and reports the changes that no longer apply, and applies the others', async () => {
    const { vol, base } = await movedHead('best-http');
    const r = await postCommit(vol.name, { base, changes: replay, bestEffort: true, message: 'replay' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const skipped = r.body.skipped as wire.SkippedChange[];
    assert.deepEqual(
      skipped.map((s) => [s.index, s.path]),
      [
        [0, '/src/a'],
        [1, '/missing'],
        [2, '/dir/y'],
      ],
    );
    for (const s of skipped) assert.ok(s.reason.length > 0);
    assert.match(skipped[2]!.reason, /not a directory/);
    assert.equal((await vol.files.stat('/keep')).mode, 0o600);
    assert.equal((await vol.files.stat('/new')).size, 0);
    assert.equal((await vol.files.read('/dir')).toString(), 'now a file');
    assert.equal(await vol.files.exists('/dst'), false);
  });

  it('without bestEffort the same commit fails with 404 and publishes nothing', async () => {
    const { vol, base } = await movedHead('best-strict');
    const head = (await vol.refresh()).head;
    const r = await postCommit(vol.name, { base, changes: replay });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'NotFound');
    assert.match(r.body.error.message, /cannot move \/src\/a/);
    assert.equal((await vol.refresh()).head, head);
    // A parent that became a file is a 409 on its own.
    const c = await postCommit(vol.name, { changes: [emptyFile('/dir/y')] });
    assert.equal(c.status, 409);
    assert.equal((await vol.refresh()).head, head);
  });

  it('the SDK passes bestEffort through and exposes skipped; plain commits answer skipped: []', async () => {
    const { vol, base } = await movedHead('best-sdk');
    const r = await vol.commitChanges(replay, { base, bestEffort: true });
    assert.deepEqual(
      r.skipped.map((s) => s.index),
      [0, 1, 2],
    );
    const plain = await vol.files.write('/plain', 'p');
    assert.deepEqual(plain.skipped, []);
  });

  it('validation errors still fail a bestEffort commit', async () => {
    const vol = await Volume.create('best-invalid', { client });
    const bad = await postCommit(vol.name, { changes: [{ op: 'setattr', path: '../x' }], bestEffort: true });
    assert.equal(bad.status, 400);
    const missing = await postCommit(vol.name, {
      changes: [{ op: 'put', path: '/f', size: 1, chunkSize: SMALL_CHUNK_SIZE, chunks: ['0'.repeat(64)] }],
      bestEffort: true,
    });
    assert.equal(missing.status, 412);
  });
});
