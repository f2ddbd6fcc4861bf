/**
 * @module test/http-api.test
 * End-to-end tests of the HTTP API over real loopback HTTP: a real
 * `startServer` on a temp data dir (SQLite file, blob directory), driven
 * with fetch exactly as the SDK drives it. Besides every route's happy path,
 * it plays a hostile client: bad and foreign tokens, other tenants, odd names
 * and paths, broken bodies, forged signed URLs.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE, LARGE_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { UrlSigner } from '../src/stores/local/url-signer.js';
import { openMetadataStore } from '../src/stores/registry.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;

before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv?.close();
});

interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

interface CallOptions {
  token?: string | null;
  json?: unknown;
  body?: RequestInit['body'];
  headers?: Record<string, string>;
  base?: string;
}

/** One API call; `token: null` sends no Authorization header. */
async function call<T = any>(method: string, path: string, opts: CallOptions = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? srv.token : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(opts.json);
  }
  let res: Response;
  try {
    res = await fetch(`${opts.base ?? srv.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  } catch (e) {
    // undici says only "fetch failed"; the cause (a reset, a timeout) is what tells a flake from a bug.
    throw new Error(`${method} ${path}: ${(e as Error).message}: ${String((e as Error).cause)}`, { cause: e });
  }
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
  return { status: res.status, body: parsed as T, headers: res.headers };
}

function expectError(a: Answer, status: number, code: string): void {
  assert.equal(a.status, status, `expected ${status} ${code}, got ${a.status} ${JSON.stringify(a.body)}`);
  assert.equal(a.body?.error?.code, code, JSON.stringify(a.body));
  assert.equal(typeof a.body.error.message, 'string');
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Uploads one small file's bytes through signed URLs and commits it at `path`; returns the commit answer. */
async function writeFile(
  volume: string,
  path: string,
  bytes: Uint8Array,
  token?: string,
): Promise<Answer<wire.CommitResponse>> {
  const hashes: string[] = [];
  const uploads: Array<{ hash: string; key: string }> = [];
  const chunks: Array<{ hash: string; size: number; bytes: Uint8Array }> = [];
  for (let off = 0; off < bytes.length; off += SMALL_CHUNK_SIZE) {
    const part = bytes.subarray(off, Math.min(bytes.length, off + SMALL_CHUNK_SIZE));
    chunks.push({ hash: sha256(part), size: part.length, bytes: part });
    hashes.push(sha256(part));
  }
  const opts = token ? { token } : {};
  if (chunks.length > 0) {
    const plan = await call<wire.UploadResponse>('POST', `/v1/volumes/${volume}/uploads`, {
      ...opts,
      json: { chunks: chunks.map(({ hash, size }) => ({ hash, size })) },
    });
    assert.equal(plan.status, 200, JSON.stringify(plan.body));
    for (const m of plan.body.missing) {
      const chunk = chunks.find((c) => c.hash === m.hash)!;
      const put = await fetch(m.request.url, {
        method: m.request.method,
        headers: m.request.headers,
        body: chunk.bytes,
      });
      assert.equal(put.status, 201, await put.text());
      uploads.push({ hash: m.hash, key: m.key });
    }
  }
  return call('POST', `/v1/volumes/${volume}/commits`, {
    ...opts,
    json: { changes: [{ op: 'put', path, size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: hashes }], uploads },
  });
}

/** Fetches a file's bytes through its read plan's signed GETs. */
async function readFile(volume: string, path: string): Promise<Buffer> {
  const plan = await call<wire.ReadPlan>('GET', `/v1/volumes/${volume}/read?path=${encodeURIComponent(path)}`);
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
  const parts: Buffer[] = [];
  for (const c of plan.body.chunks) {
    const res = await fetch(c.request.url, { method: c.request.method, headers: c.request.headers });
    assert.ok(res.status === 200 || res.status === 206, `GET chunk: ${res.status}`);
    parts.push(Buffer.from(await res.arrayBuffer()));
  }
  return Buffer.concat(parts);
}

async function head(volume: string): Promise<string> {
  const v = await call<wire.Volume>('GET', `/v1/volumes/${volume}`);
  assert.equal(v.status, 200, JSON.stringify(v.body));
  return v.body.head;
}

async function createVolume(name: string, extra: Record<string, unknown> = {}): Promise<wire.Volume> {
  const v = await call<wire.Volume>('POST', '/v1/volumes', { json: { name, ...extra } });
  assert.equal(v.status, 201, JSON.stringify(v.body));
  return v.body;
}

/** A signer holding the server's URL-signing secret (read from its metadata store), to mint URLs the server did not issue. */
async function serverSigner(): Promise<UrlSigner> {
  const md = await openMetadataStore(join(srv.dataDir, 'metadata.db'));
  try {
    const secret = await md.getSetting('url-signing-secret');
    assert.ok(secret);
    return new UrlSigner({ secret, baseUrl: srv.url });
  } finally {
    await md.close();
  }
}

describe('public routes', () => {
  it('answers health without a token', async () => {
    const a = await call('GET', '/v1/health', { token: null });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, { ok: true });
  });

  it('serves an OpenAPI document listing every route', async () => {
    const a = await call('GET', '/v1/openapi.json', { token: null });
    assert.equal(a.status, 200);
    const doc = a.body;
    assert.match(doc.openapi, /^3\./);
    const expected: Array<[string, string]> = [
      ['get', '/v1/health'],
      ['get', '/v1/tenant'],
      ['patch', '/v1/tenant'],
      ['get', '/v1/tokens'],
      ['post', '/v1/tokens'],
      ['delete', '/v1/tokens/{id}'],
      ['get', '/v1/volumes'],
      ['post', '/v1/volumes'],
      ['put', '/v1/volumes/{name}'],
      ['get', '/v1/volumes/{name}'],
      ['patch', '/v1/volumes/{name}'],
      ['delete', '/v1/volumes/{name}'],
      ['post', '/v1/volumes/{name}/uploads'],
      ['post', '/v1/volumes/{name}/commits'],
      ['get', '/v1/volumes/{name}/commits'],
      ['get', '/v1/volumes/{name}/snapshots'],
      ['post', '/v1/volumes/{name}/snapshots'],
      ['delete', '/v1/volumes/{name}/snapshots/{snapshot}'],
      ['post', '/v1/volumes/{name}/restore'],
      ['post', '/v1/volumes/{name}/fork'],
      ['get', '/v1/volumes/{name}/stat'],
      ['get', '/v1/volumes/{name}/list'],
      ['get', '/v1/volumes/{name}/read'],
      ['get', '/v1/blobs/{key}'],
      ['put', '/v1/blobs/{key}'],
    ];
    for (const [method, path] of expected)
      assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    for (const name of ['Volume', 'CommitRequest', 'Change', 'ErrorBody', 'ReadPlan', 'UploadResponse'])
      assert.ok(doc.components.schemas[name], `schema ${name}`);
    assert.ok(doc.components.securitySchemes.bearer);
    assert.deepEqual(doc.paths['/v1/health'].get.security, []);
  });

  it('answers unknown routes with a JSON 404', async () => {
    expectError(await call('GET', '/v1/no-such-thing'), 404, 'NotFound');
  });
});

describe('tenant and tokens', () => {
  it('gets and updates the tenant', async () => {
    const t = await call<wire.Tenant>('GET', '/v1/tenant');
    assert.equal(t.status, 200);
    assert.equal(t.body.name, 'default');
    assert.equal(t.body.defaultCap, 2 * 1024 ** 3);
    const u = await call<wire.Tenant>('PATCH', '/v1/tenant', { json: { defaultCap: 5 * 1024 ** 3 } });
    assert.equal(u.status, 200);
    assert.equal(u.body.defaultCap, 5 * 1024 ** 3);
    const v = await createVolume('tenant-cap-check');
    assert.equal(v.cap, 5 * 1024 ** 3);
    assert.equal((await call('PATCH', '/v1/tenant', { json: { defaultCap: 2 * 1024 ** 3 } })).status, 200);
    expectError(await call('PATCH', '/v1/tenant', { json: { defaultCap: -1 } }), 400, 'InvalidArgument');
    expectError(await call('PATCH', '/v1/tenant', { json: {} }), 400, 'InvalidArgument');
  });

  it('creates, lists and revokes tokens; a revoked token is refused', async () => {
    const c = await call<wire.CreateTokenResponse>('POST', '/v1/tokens', { json: { name: 'ci' } });
    assert.equal(c.status, 201);
    assert.equal(c.body.token.name, 'ci');
    assert.equal(c.body.token.readOnly, false);
    assert.equal(c.body.token.volume, null);
    assert.equal(typeof c.body.secret, 'string');
    assert.equal((await call('GET', '/v1/volumes', { token: c.body.secret })).status, 200);

    const list = await call<wire.TokenList>('GET', '/v1/tokens');
    assert.equal(list.status, 200);
    assert.ok(list.body.tokens.some((t) => t.id === c.body.token.id));
    assert.ok(!JSON.stringify(list.body).includes(c.body.secret), 'secrets are never listed');
    assert.ok(!JSON.stringify(list.body).includes('secretHash'));

    const del = await call('DELETE', `/v1/tokens/${c.body.token.id}`);
    assert.equal(del.status, 204);
    const revoked = await call('GET', '/v1/volumes', { token: c.body.secret });
    expectError(revoked, 401, 'Unauthenticated');
    const after = await call<wire.TokenList>('GET', '/v1/tokens');
    assert.ok(after.body.tokens.find((t) => t.id === c.body.token.id)?.revokedAt);
    expectError(await call('DELETE', '/v1/tokens/tok_doesnotexist'), 404, 'NotFound');
    expectError(await call('POST', '/v1/tokens', { json: { name: 7 } }), 400, 'InvalidArgument');
  });
});

describe('volumes', () => {
  it('creates, gets, lists, updates and deletes', async () => {
    const v = await createVolume('life', { accessMode: 'RWX', cap: 1024 ** 3, tuning: { prefetch: 2 } });
    assert.equal(v.name, 'life');
    assert.equal(v.accessMode, 'RWX');
    assert.equal(v.cap, 1024 ** 3);
    assert.equal(v.tuning.prefetch, 2);
    assert.match(v.createdAt, /^\d{4}-\d\d-\d\dT/);
    expectError(await call('POST', '/v1/volumes', { json: { name: 'life' } }), 409, 'AlreadyExists');

    const got = await call<wire.Volume>('GET', '/v1/volumes/life');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, v);

    const list = await call<wire.VolumeList>('GET', '/v1/volumes');
    assert.ok(list.body.volumes.some((x) => x.name === 'life'));

    const patched = await call<wire.Volume>('PATCH', '/v1/volumes/life', {
      json: { cap: 2 * 1024 ** 3, tuning: { writeback: true } },
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.cap, 2 * 1024 ** 3);
    assert.equal(patched.body.tuning.writeback, true);
    assert.equal(patched.body.tuning.prefetch, 2);

    assert.equal((await call('DELETE', '/v1/volumes/life')).status, 204);
    expectError(await call('GET', '/v1/volumes/life'), 404, 'NotFound');
    expectError(await call('DELETE', '/v1/volumes/life'), 404, 'NotFound');
  });

  it('get-or-creates with PUT: 201 then 200', async () => {
    const first = await call<wire.Volume>('PUT', '/v1/volumes/goc', { json: { cap: 4096 } });
    assert.equal(first.status, 201);
    assert.equal(first.body.cap, 4096);
    const second = await call<wire.Volume>('PUT', '/v1/volumes/goc');
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    expectError(await call('PUT', '/v1/volumes/goc', { json: { name: 'other' } }), 400, 'InvalidArgument');
  });

  it('refuses bad volume names with 400', async () => {
    for (const name of ['Upper', 'has space', '-lead', 'a'.repeat(64), '', 'x/y', 'é']) {
      expectError(await call('POST', '/v1/volumes', { json: { name } }), 400, 'InvalidArgument');
    }
    for (const raw of ['Upper', 'a%2Fb', 'a%00b', 'a%FF', 'x'.repeat(300)]) {
      expectError(await call('GET', `/v1/volumes/${raw}`), 400, 'InvalidArgument');
      expectError(await call('PUT', `/v1/volumes/${raw}`), 400, 'InvalidArgument');
    }
    const list = await call<wire.VolumeList>('GET', '/v1/volumes');
    assert.ok(!list.body.volumes.some((v) => /upper|%/i.test(v.name)));
  });
});

describe('commits and reads through signed URLs', () => {
  it('uploads, commits and reads back a file', async () => {
    const vol = await createVolume('rt');
    const bytes = randomBytes(300_000);
    const c = await writeFile('rt', '/dir/data.bin', bytes);
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.commit.seq, 2);
    assert.deepEqual(c.body.overwritten, []);
    assert.ok(c.body.commit.paths.includes('/dir/data.bin'));
    assert.notEqual(await head('rt'), vol.head);

    // Present chunks are never asked for again.
    const again = await call<wire.UploadResponse>('POST', '/v1/volumes/rt/uploads', {
      json: { chunks: [{ hash: sha256(bytes), size: bytes.length }] },
    });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.missing, []);
    assert.equal(again.body.present, 1);

    assert.deepEqual(await readFile('rt', '/dir/data.bin'), bytes);

    const st = await call<wire.StatResponse>('GET', '/v1/volumes/rt/stat?path=/dir/data.bin');
    assert.equal(st.status, 200);
    assert.equal(st.body.entry.type, 'file');
    assert.equal(st.body.entry.size, bytes.length);
    assert.equal(st.body.commit, c.body.commit.id);

    const ls = await call<wire.ListResponse>('GET', '/v1/volumes/rt/list?path=/');
    assert.deepEqual(
      ls.body.entries.map((e) => [e.path, e.type]),
      [['/dir', 'dir']],
    );
    const rec = await call<wire.ListResponse>('GET', '/v1/volumes/rt/list?recursive=true');
    assert.deepEqual(rec.body.entries.map((e) => e.path).sort(), ['/dir', '/dir/data.bin']);
    expectError(await call('GET', '/v1/volumes/rt/list?recursive=maybe'), 400, 'InvalidArgument');

    // Reads at an older commit see the older tree.
    const old = await call('GET', `/v1/volumes/rt/stat?path=/dir&commit=${vol.head}`);
    expectError(old, 404, 'NotFound');

    // History, newest first, paged.
    const page = await call<wire.CommitList>('GET', '/v1/volumes/rt/commits?limit=1');
    assert.equal(page.status, 200);
    assert.equal(page.body.commits.length, 1);
    assert.equal(page.body.commits[0]!.id, c.body.commit.id);
    assert.equal(page.body.nextBefore, 2);
    const rest = await call<wire.CommitList>('GET', `/v1/volumes/rt/commits?before=${page.body.nextBefore}`);
    assert.deepEqual(
      rest.body.commits.map((x) => x.seq),
      [1],
    );
    assert.equal(rest.body.nextBefore, null);
    expectError(await call('GET', '/v1/volumes/rt/commits?limit=abc'), 400, 'InvalidArgument');
  });

  it('serves a single byte range of a blob', async () => {
    await createVolume('ranges');
    const bytes = randomBytes(10_000);
    assert.equal((await writeFile('ranges', '/f', bytes)).status, 201);
    const plan = await call<wire.ReadPlan>('GET', '/v1/volumes/ranges/read?path=/f');
    const url = plan.body.chunks[0]!.request.url;
    const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 100-199/10000');
    assert.equal(part.headers.get('content-length'), '100');
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(100, 200));
    const tail = await fetch(url, { headers: { range: 'bytes=-10' } });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), bytes.subarray(9990));
    const whole = await fetch(url);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-length'), '10000');
    await whole.arrayBuffer();
    const past = await fetch(url, { headers: { range: 'bytes=20000-' } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */10000');
    await past.arrayBuffer();
  });

  it('refuses a commit that references a never-uploaded chunk, leaving head unchanged', async () => {
    await createVolume('ghost');
    const before = await head('ghost');
    const hash = sha256(randomBytes(64));
    const a = await call('POST', '/v1/volumes/ghost/commits', {
      json: { changes: [{ op: 'put', path: '/x', size: 64, chunkSize: SMALL_CHUNK_SIZE, chunks: [hash] }] },
    });
    assert.ok(a.status >= 400 && a.status < 500, `status ${a.status}`);
    expectError(a, 412, 'PreconditionFailed');
    // A forged upload key is no better.
    const b = await call('POST', '/v1/volumes/ghost/commits', {
      json: {
        changes: [{ op: 'put', path: '/x', size: 64, chunkSize: SMALL_CHUNK_SIZE, chunks: [hash] }],
        uploads: [{ hash, key: `chunks/${hash.slice(0, 2)}/${hash}-0000000000000000` }],
      },
    });
    expectError(b, 412, 'PreconditionFailed');
    assert.equal(await head('ghost'), before);
  });

  it('refuses a commit over the cap with 413 naming cap and size, leaving head unchanged', async () => {
    await createVolume('capped', { cap: 1000 });
    assert.equal((await writeFile('capped', '/first', randomBytes(600))).status, 201);
    const before = await head('capped');
    // Each upload fits under the cap; the volume after the commit would not.
    const a: Answer = await writeFile('capped', '/big', randomBytes(600));
    expectError(a, 413, 'QuotaExceeded');
    assert.match(a.body.error.message, /1000/);
    assert.match(a.body.error.message, /1200/);
    assert.deepEqual(a.body.error.details, { cap: 1000, size: 1200 });
    assert.equal(await head('capped'), before);
    // Raising the cap lets the same data in.
    assert.equal((await call('PATCH', '/v1/volumes/capped', { json: { cap: 4000 } })).status, 200);
    assert.equal((await writeFile('capped', '/big', randomBytes(600))).status, 201);
  });

  it("refuses to sign uploads of more bytes than the volume's cap (no commit could take them in), with 413 naming cap and size", async () => {
    await createVolume('capped-uploads', { cap: 1000 });
    const bytes = randomBytes(2000);
    const a: Answer = await call('POST', '/v1/volumes/capped-uploads/uploads', {
      json: { chunks: [{ hash: sha256(bytes), size: 2000 }] },
    });
    expectError(a, 413, 'QuotaExceeded');
    assert.deepEqual(a.body.error.details, { cap: 1000, size: 2000 });
    assert.match(a.body.error.message, /stowage volume resize capped-uploads/);
    const p: Answer = await call('POST', '/v1/volumes/capped-uploads/packs', {
      json: { size: 2000, sha256: sha256(bytes) },
    });
    expectError(p, 413, 'QuotaExceeded');
  });

  it('commits directories, symlinks, moves, setattr and deletes', async () => {
    await createVolume('ops');
    assert.equal((await writeFile('ops', '/a.txt', Buffer.from('hello'))).status, 201);
    const c = await call<wire.CommitResponse>('POST', '/v1/volumes/ops/commits', {
      json: {
        message: 'shuffle',
        changes: [
          { op: 'mkdir', path: '/d' },
          { op: 'move', from: '/a.txt', to: '/d/a.txt' },
          { op: 'symlink', path: '/link', target: 'd/a.txt' },
          { op: 'setattr', path: '/d/a.txt', mode: 0o600 },
        ],
      },
    });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.commit.message, 'shuffle');
    const st = await call<wire.StatResponse>('GET', '/v1/volumes/ops/stat?path=/d/a.txt');
    assert.equal(st.body.entry.mode, 0o600);
    const link = await call<wire.StatResponse>('GET', '/v1/volumes/ops/stat?path=/link');
    assert.equal(link.body.entry.target, 'd/a.txt');
    const del = await call('POST', '/v1/volumes/ops/commits', {
      json: { changes: [{ op: 'delete', path: '/d', recursive: true }] },
    });
    assert.equal(del.status, 201);
    expectError(await call('GET', '/v1/volumes/ops/stat?path=/d'), 404, 'NotFound');
    expectError(
      await call('POST', '/v1/volumes/ops/commits', { json: { changes: [{ op: 'explode', path: '/x' }] } }),
      400,
      'InvalidArgument',
    );
    expectError(await call('POST', '/v1/volumes/ops/commits', { json: { changes: [] } }), 400, 'InvalidArgument');
  });

  it('lists the changes after a commit as JSON, page by page, and refuses foreign or odd cursors', async () => {
    await createVolume('feed');
    const first = (await writeFile('feed', '/a.txt', Buffer.from('one'))).body;
    await writeFile('feed', '/b.txt', Buffer.from('two'));
    const mk = await call<wire.CommitResponse>('POST', '/v1/volumes/feed/commits', {
      json: {
        changes: [
          { op: 'mkdir', path: '/d' },
          { op: 'delete', path: '/a.txt' },
        ],
      },
    });
    const all = await call<wire.ChangesResponse>('GET', `/v1/volumes/feed/changes?since=${first.commit.id}`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.head, mk.body.commit.id);
    assert.deepEqual(
      all.body.commits.map((c) => c.changes.map((x) => `${x.kind} ${x.path}`)),
      [['added /b.txt'], ['deleted /a.txt', 'added /d']],
    );
    assert.deepEqual(
      all.body.commits.map((c) => c.truncated),
      [false, false],
    );
    const page = await call<wire.ChangesResponse>('GET', `/v1/volumes/feed/changes?since=${first.commit.id}&limit=1`);
    assert.equal(page.body.commits.length, 1);
    const rest = await call<wire.ChangesResponse>(
      'GET',
      `/v1/volumes/feed/changes?since=${page.body.commits[0]!.id}&limit=1`,
    );
    assert.deepEqual(
      rest.body.commits.map((c) => c.id),
      [mk.body.commit.id],
    );
    assert.deepEqual(
      (await call<wire.ChangesResponse>('GET', '/v1/volumes/feed/changes')).body,
      { head: mk.body.commit.id, commits: [] },
      'no cursor: nothing after the head',
    );
    // A commit of another volume is not a cursor here; nor is garbage; limits are bounded.
    expectError(await call('GET', `/v1/volumes/ops/changes?since=${first.commit.id}`), 404, 'NotFound');
    expectError(await call('GET', '/v1/volumes/feed/changes?since=..%2F..%2Fetc'), 404, 'NotFound');
    expectError(await call('GET', `/v1/volumes/feed/changes?since=${first.commit.id}&limit=0`), 400, 'InvalidArgument');
    expectError(
      await call('GET', `/v1/volumes/feed/changes?since=${first.commit.id}&limit=1001`),
      400,
      'InvalidArgument',
    );
  });
});

describe('snapshots, restore and fork', () => {
  it('snapshots, restores a snapshot, forks and deletes snapshots', async () => {
    await createVolume('snaps');
    const v1 = randomBytes(5000);
    assert.equal((await writeFile('snaps', '/f', v1)).status, 201);
    const snap = await call<wire.Snapshot>('POST', '/v1/volumes/snaps/snapshots', { json: { name: 'v1' } });
    assert.equal(snap.status, 201);
    assert.equal(snap.body.name, 'v1');
    assert.equal(snap.body.commit, await head('snaps'));
    const auto = await call<wire.Snapshot>('POST', '/v1/volumes/snaps/snapshots');
    assert.equal(auto.status, 201, JSON.stringify(auto.body));
    expectError(await call('POST', '/v1/volumes/snaps/snapshots', { json: { name: 'v1' } }), 409, 'AlreadyExists');

    const list = await call<wire.SnapshotList>('GET', '/v1/volumes/snaps/snapshots');
    assert.deepEqual(list.body.snapshots.map((s) => s.name).slice(0, 1), ['v1']);
    assert.equal(list.body.snapshots.length, 2);

    assert.equal((await writeFile('snaps', '/f', randomBytes(10))).status, 201);
    const restored = await call<wire.CommitResponse>('POST', '/v1/volumes/snaps/restore', { json: { snapshot: 'v1' } });
    assert.equal(restored.status, 201, JSON.stringify(restored.body));
    assert.deepEqual(await readFile('snaps', '/f'), v1);
    expectError(await call('POST', '/v1/volumes/snaps/restore', { json: {} }), 400, 'InvalidArgument');
    expectError(await call('POST', '/v1/volumes/snaps/restore', { json: { snapshot: 'nope' } }), 404, 'NotFound');

    const fork = await call<wire.Volume>('POST', '/v1/volumes/snaps/fork', {
      json: { name: 'snaps-copy', snapshot: 'v1' },
    });
    assert.equal(fork.status, 201, JSON.stringify(fork.body));
    assert.equal(fork.body.name, 'snaps-copy');
    assert.equal(fork.body.size, 5000);
    assert.deepEqual(await readFile('snaps-copy', '/f'), v1);
    expectError(await call('POST', '/v1/volumes/snaps/fork', { json: { name: 'snaps-copy' } }), 409, 'AlreadyExists');

    assert.equal((await call('DELETE', '/v1/volumes/snaps/snapshots/v1')).status, 204);
    expectError(await call('DELETE', '/v1/volumes/snaps/snapshots/v1'), 404, 'NotFound');
  });
});

describe('authentication', () => {
  it('refuses missing, malformed and unknown tokens with 401 and WWW-Authenticate', async () => {
    const cases: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer a b' },
      { authorization: 'Bearer garbage' },
      { authorization: `Bearer stw_tok_${'0'.repeat(20)}_${'a'.repeat(43)}` },
      { authorization: `Bearer ${srv.token}x` },
      { authorization: `Bearer ${'A'.repeat(10_000)}` },
    ];
    for (const headers of cases) {
      const a = await call('GET', '/v1/volumes', { token: null, headers });
      expectError(a, 401, 'Unauthenticated');
      assert.match(a.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    // Mutating routes too, and before any body is read.
    expectError(await call('POST', '/v1/volumes', { token: null, json: { name: 'sneaky' } }), 401, 'Unauthenticated');
    expectError(await call('GET', '/v1/volumes/sneaky'), 404, 'NotFound');
  });

  it('refuses an expired token', async () => {
    const c = await call<wire.CreateTokenResponse>('POST', '/v1/tokens', { json: { name: 'brief', expiresIn: 1 } });
    assert.equal(c.status, 201);
    assert.ok(c.body.token.expiresAt);
    await new Promise((r) => setTimeout(r, Date.parse(c.body.token.expiresAt!) - Date.now() + 50));
    expectError(await call('GET', '/v1/volumes', { token: c.body.secret }), 401, 'Unauthenticated');
  });

  it('keeps tenants apart: another tenant gets 404, never 403, and cannot list', async () => {
    await createVolume('private');
    assert.equal((await writeFile('private', '/secret.txt', Buffer.from('mine'))).status, 201);
    const before = await head('private');
    const other = await srv.engine.createTenant('other-tenant');
    const token = other.secret;
    const list = await call<wire.VolumeList>('GET', '/v1/volumes', { token });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.volumes, []);
    expectError(await call('GET', '/v1/volumes/private', { token }), 404, 'NotFound');
    expectError(await call('GET', '/v1/volumes/private/stat?path=/secret.txt', { token }), 404, 'NotFound');
    expectError(await call('GET', '/v1/volumes/private/read?path=/secret.txt', { token }), 404, 'NotFound');
    expectError(await call('GET', '/v1/volumes/private/commits', { token }), 404, 'NotFound');
    expectError(await call('PATCH', '/v1/volumes/private', { token, json: { cap: 1 } }), 404, 'NotFound');
    expectError(await call('DELETE', '/v1/volumes/private', { token }), 404, 'NotFound');
    expectError(await call('POST', '/v1/volumes/private/snapshots', { token }), 404, 'NotFound');
    expectError(await call('POST', '/v1/volumes/private/fork', { token, json: { name: 'stolen' } }), 404, 'NotFound');
    expectError(await call('POST', '/v1/volumes/private/uploads', { token, json: { chunks: [] } }), 404, 'NotFound');
    expectError(
      await call('POST', '/v1/volumes/private/commits', {
        token,
        json: { changes: [{ op: 'delete', path: '/secret.txt' }] },
      }),
      404,
      'NotFound',
    );
    expectError(await call('POST', '/v1/tokens', { token, json: { name: 'x', volume: 'private' } }), 404, 'NotFound');
    // The same name is free in the other tenant, and is a different volume.
    const mine = await call<wire.Volume>('PUT', '/v1/volumes/private', { token });
    assert.equal(mine.status, 201);
    assert.equal(await head('private'), before);
    const theirs = await call<wire.TokenList>('GET', '/v1/tokens', { token });
    assert.ok(!theirs.body.tokens.some((t) => t.name === 'ci'));
  });

  it('limits a scoped read-only token to reading its one volume', async () => {
    await createVolume('scoped');
    await createVolume('elsewhere');
    assert.equal((await writeFile('scoped', '/r.txt', Buffer.from('read me'))).status, 201);
    const before = await head('scoped');
    const c = await call<wire.CreateTokenResponse>('POST', '/v1/tokens', {
      json: { name: 'mount-ro', volume: 'scoped', readOnly: true },
    });
    assert.equal(c.status, 201);
    assert.equal(c.body.token.readOnly, true);
    assert.ok(c.body.token.volume);
    const token = c.body.secret;

    assert.equal((await call('GET', '/v1/volumes/scoped', { token })).status, 200);
    assert.equal((await call('GET', '/v1/volumes/scoped/stat?path=/r.txt', { token })).status, 200);
    assert.equal((await call('GET', '/v1/volumes/scoped/read?path=/r.txt', { token })).status, 200);
    const list = await call<wire.VolumeList>('GET', '/v1/volumes', { token });
    assert.deepEqual(
      list.body.volumes.map((v) => v.name),
      ['scoped'],
    );
    expectError(await call('GET', '/v1/volumes/elsewhere', { token }), 404, 'NotFound');

    expectError(
      await call('POST', '/v1/volumes/scoped/commits', {
        token,
        json: { changes: [{ op: 'delete', path: '/r.txt' }] },
      }),
      403,
      'ReadOnly',
    );
    expectError(
      await call('POST', '/v1/volumes/scoped/uploads', {
        token,
        json: { chunks: [{ hash: sha256(Buffer.from('x')), size: 1 }] },
      }),
      403,
      'ReadOnly',
    );
    expectError(await call('POST', '/v1/volumes/scoped/snapshots', { token }), 403, 'ReadOnly');
    // Not even a read-write scoped token may delete its volume: the kind forbids it, not the read-only flag.
    expectError(await call('DELETE', '/v1/volumes/scoped', { token }), 403, 'Forbidden');
    expectError(await call('POST', '/v1/volumes', { token, json: { name: 'new-one' } }), 403, 'Forbidden');
    expectError(await call('GET', '/v1/tokens', { token }), 403, 'Forbidden');
    assert.equal(await head('scoped'), before);
  });
});

describe('hostile input', () => {
  it('refuses malformed changes with 400 naming the change, changing nothing', async () => {
    await createVolume('bad-changes');
    const before = await head('bad-changes');
    const hash = 'a'.repeat(64);
    const bad: Array<[unknown, RegExp]> = [
      [null, /changes\[1\]: unknown op/],
      [42, /changes\[1\]: unknown op/],
      [{ op: 'explode', path: '/x' }, /changes\[1\]: unknown op "explode"/],
      [{ op: 'put', path: '/x', size: 'big', chunkSize: SMALL_CHUNK_SIZE, chunks: [hash] }, /changes\[1\]: size/],
      [{ op: 'put', path: '/x', size: 3, chunkSize: 12345, chunks: [hash] }, /changes\[1\]: chunkSize/],
      [
        { op: 'put', path: '/x', size: 3, chunkSize: SMALL_CHUNK_SIZE, chunks: ['../../etc'] },
        /changes\[1\]: chunk hashes/,
      ],
      [
        { op: 'put', path: '/x', size: 3, chunkSize: SMALL_CHUNK_SIZE, chunks: [hash], createParents: 'no' },
        /changes\[1\]: createParents must be true or false/,
      ],
      [{ op: 'delete', path: '/x', recursive: 'yes' }, /changes\[1\]: recursive must be true or false/],
      [{ op: 'move', from: '/a', to: '/b', overwrite: 1 }, /changes\[1\]: overwrite must be true or false/],
      [{ op: 'mkdir', path: 7 }, /changes\[1\]/],
      [{ op: 'setattr', path: '/x', mode: -1 }, /changes\[1\]: mode/],
      [{ op: 'symlink', path: '/l', target: '' }, /changes\[1\]: symlink target/],
    ];
    for (const [change, message] of bad) {
      const a = await call('POST', '/v1/volumes/bad-changes/commits', {
        json: { changes: [{ op: 'mkdir', path: '/ok' }, change] },
      });
      expectError(a, 400, 'InvalidArgument');
      assert.match(a.body.error.message, message, JSON.stringify(change));
    }
    expectError(
      await call('POST', '/v1/volumes/bad-changes/commits', { json: { changes: 'all of them' } }),
      400,
      'InvalidArgument',
    );
    expectError(
      await call('POST', '/v1/volumes/bad-changes/commits', { json: { changes: [] } }),
      400,
      'InvalidArgument',
    );
    assert.equal(await head('bad-changes'), before);
  });

  it('refuses a commit of more than 100,000 changes with 413 naming the bound, changing nothing', async () => {
    await createVolume('huge-commit');
    const before = await head('huge-commit');
    // Cheap for a client to send (1.2M of these fit in the 32 MiB body limit); refused before any is looked at.
    for (const count of [100_001, 1_000_000]) {
      const changes = Array.from({ length: count }, (_, i) => ({ op: 'mkdir', path: `/d${i}` }));
      const a = await call('POST', '/v1/volumes/huge-commit/commits', { json: { changes } });
      expectError(a, 413, 'PayloadTooLarge');
      assert.match(a.body.error.message, /at most 100000 changes.*split it into several commits/);
      assert.equal(a.body.error.details?.maxChanges, 100_000);
    }
    assert.equal(await head('huge-commit'), before);
    // At the bound the commit goes through.
    const ok = await call<wire.CommitResponse>('POST', '/v1/volumes/huge-commit/commits', {
      json: {
        changes: Array.from({ length: 100_000 }, (_, i) => ({
          op: 'mkdir',
          path: `/wide/d${String(i).padStart(6, '0')}`,
        })),
      },
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
    const page = await call(
      'GET',
      `/v1/volumes/huge-commit/list?path=/wide&limit=3&after=${encodeURIComponent('/wide/d050000')}`,
    );
    assert.deepEqual(
      page.body.entries.map((e: { name: string }) => e.name),
      ['d050001', 'd050002', 'd050003'],
    );
  });

  it('refuses odd paths in queries with 400', async () => {
    await createVolume('paths');
    const bad = [
      '/a/../b',
      '/..',
      '//a',
      '/a//b',
      '/a/',
      'relative',
      '/a%00b',
      '/a%FF',
      `/${'n'.repeat(256)}`,
      `/${'d/'.repeat(2100)}x`,
      '/%ED%A0%80',
    ];
    for (const p of bad) {
      const raw = p.includes('%') ? p : encodeURIComponent(p);
      for (const route of ['stat', 'list', 'read']) {
        expectError(await call('GET', `/v1/volumes/paths/${route}?path=${raw}`), 400, 'InvalidArgument');
      }
    }
    expectError(await call('GET', '/v1/volumes/paths/read'), 400, 'InvalidArgument');
    expectError(await call('GET', '/v1/volumes/paths/stat?path=/&commit=not-a-commit'), 404, 'NotFound');
  });

  it('refuses odd paths in commits with 400 and changes nothing', async () => {
    await createVolume('cpaths');
    const before = await head('cpaths');
    const bad = ['/a/../b', '//x', '/a\u0000b', `/${'n'.repeat(256)}`, '/\ud800', 'rel', ''];
    expectError(
      await call('POST', '/v1/volumes/cpaths/commits', { json: { changes: [{ op: 'move', from: '/a', to: '/' }] } }),
      400,
      'InvalidArgument',
    );
    for (const path of bad) {
      expectError(
        await call('POST', '/v1/volumes/cpaths/commits', { json: { changes: [{ op: 'mkdir', path }] } }),
        400,
        'InvalidArgument',
      );
      expectError(
        await call('POST', '/v1/volumes/cpaths/commits', { json: { changes: [{ op: 'move', from: '/a', to: path }] } }),
        400,
        'InvalidArgument',
      );
    }
    // Invalid UTF-8 bytes inside a JSON string.
    const raw = Buffer.concat([
      Buffer.from('{"changes":[{"op":"mkdir","path":"/a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}]}'),
    ]);
    expectError(
      await call('POST', '/v1/volumes/cpaths/commits', { body: raw, headers: { 'content-type': 'application/json' } }),
      400,
      'InvalidArgument',
    );
    assert.equal(await head('cpaths'), before);
    const ls = await call<wire.ListResponse>('GET', '/v1/volumes/cpaths/list?recursive=1');
    assert.deepEqual(ls.body.entries, []);
  });

  it('refuses malformed JSON, wrong content types and wrongly typed fields with 400', async () => {
    for (const body of ['{', '{"name": "x",}', 'null', '[]', '"str"', 'nul']) {
      expectError(
        await call('POST', '/v1/volumes', { body, headers: { 'content-type': 'application/json' } }),
        400,
        'InvalidArgument',
      );
    }
    expectError(
      await call('POST', '/v1/volumes', { body: '{"name":"ct"}', headers: { 'content-type': 'text/plain' } }),
      400,
      'InvalidArgument',
    );
    expectError(await call('POST', '/v1/volumes', { body: '{"name":"ct"}' }), 400, 'InvalidArgument');
    const typed = await call('POST', '/v1/volumes', { json: { name: 'typed', cap: 'big' } });
    expectError(typed, 400, 'InvalidArgument');
    assert.match(typed.body.error.message, /cap/);
    expectError(await call('POST', '/v1/volumes', { json: { name: 'typed', cap: 1.5 } }), 400, 'InvalidArgument');
    expectError(
      await call('POST', '/v1/volumes', { json: { name: 'typed', accessMode: 'XYZ' } }),
      400,
      'InvalidArgument',
    );
    expectError(await call('GET', '/v1/volumes/typed'), 404, 'NotFound');
  });

  it('refuses oversized JSON bodies with 413, by length and when streamed', async () => {
    const small = await startTestServer({ limits: { jsonBodyBytes: 64 * 1024 } });
    try {
      const big = JSON.stringify({ name: 'huge', pad: 'x'.repeat(100 * 1024) });
      const a = await call('POST', '/v1/volumes', {
        base: small.url,
        token: small.token,
        body: big,
        headers: { 'content-type': 'application/json' },
      });
      expectError(a, 413, 'PayloadTooLarge');
      const streamed = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 20; i++)
            controller.enqueue(new TextEncoder().encode(i === 0 ? '{"name":"huge","pad":"' : 'x'.repeat(8192)));
          controller.enqueue(new TextEncoder().encode('"}'));
          controller.close();
        },
      });
      const res = await fetch(`${small.url}/v1/volumes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${small.token}`, 'content-type': 'application/json' },
        body: streamed,
        duplex: 'half',
      } as RequestInit);
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as wire.ErrorBody).error.code, 'PayloadTooLarge');
      expectError(await call('GET', '/v1/volumes/huge', { base: small.url, token: small.token }), 404, 'NotFound');
    } finally {
      await small.close();
    }
  });
});

describe('signed blob URLs', () => {
  async function uploadPlan(volume: string, bytes: Uint8Array) {
    const plan = await call<wire.UploadResponse>('POST', `/v1/volumes/${volume}/uploads`, {
      json: { chunks: [{ hash: sha256(bytes), size: bytes.length }] },
    });
    assert.equal(plan.status, 200);
    assert.equal(plan.body.missing.length, 1);
    return plan.body.missing[0]!;
  }

  function withParam(url: string, name: string, value: string): string {
    const u = new URL(url);
    u.searchParams.set(name, value);
    return u.toString();
  }

  it('refuses tampered, replayed, wrong-method and expired URLs with 403', async () => {
    await createVolume('signed');
    const bytes = randomBytes(4096);
    const m = await uploadPlan('signed', bytes);
    const url = m.request.url;
    const put = (u: string, body: Uint8Array = bytes) => fetch(u, { method: 'PUT', body });
    const expect403 = async (res: Response, why: string) => {
      assert.equal(res.status, 403, `${why}: ${res.status}`);
      assert.equal(((await res.json()) as wire.ErrorBody).error.code, 'Forbidden', why);
    };

    const sig = new URL(url).searchParams.get('X-Stowage-Signature')!;
    await expect403(
      await put(withParam(url, 'X-Stowage-Signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1))),
      'flipped signature',
    );
    await expect403(
      await put(withParam(url, 'X-Stowage-Expires', String(Math.floor(Date.now() / 1000) + 86_400))),
      'extended expiry',
    );
    await expect403(await put(withParam(url, 'X-Stowage-Size', String(bytes.length + 1))), 'changed size');
    await expect403(await put(withParam(url, 'X-Stowage-Sha256', sha256(Buffer.from('other')))), 'changed checksum');
    await expect403(await put(url.split('?')[0]!), 'no signature at all');
    const otherKey = url.replace(/\/v1\/blobs\/[^?]+/, `/v1/blobs/chunks/00/${'0'.repeat(64)}-0000000000000000`);
    await expect403(await put(otherKey), 'replayed for another key');
    await expect403(await fetch(url), 'PUT URL used for GET');

    const signer = await serverSigner();
    const expired = signer.sign(
      m.key,
      'PUT',
      { expiresIn: 1, sha256: m.hash, size: m.size },
      new Date(Date.now() - 3_600_000),
    );
    await expect403(await put(expired.url), 'expired');
    assert.ok(!existsSync(join(srv.dataDir, 'blobs', m.key)), 'no object after refused PUTs');

    // The genuine URL still works, and a GET URL is not a PUT URL.
    assert.equal((await put(url)).status, 201);
    const get = signer.sign(m.key, 'GET', { expiresIn: 60 });
    assert.deepEqual(Buffer.from(await (await fetch(get.url)).arrayBuffer()), bytes);
    await expect403(await put(get.url), 'GET URL used for PUT');
    const expiredGet = signer.sign(m.key, 'GET', { expiresIn: 1 }, new Date(Date.now() - 3_600_000));
    await expect403(await fetch(expiredGet.url), 'expired GET');
  });

  it('refuses a PUT whose bytes do not match the signed checksum or size, storing nothing', async () => {
    await createVolume('mismatch');
    const bytes = randomBytes(4096);
    const m = await uploadPlan('mismatch', bytes);
    const wrong = Buffer.from(bytes);
    wrong[0] = wrong[0]! ^ 0xff;
    const a = await fetch(m.request.url, { method: 'PUT', body: wrong });
    assert.equal(a.status, 400);
    assert.equal(((await a.json()) as wire.ErrorBody).error.code, 'InvalidArgument');
    const b = await fetch(m.request.url, { method: 'PUT', body: Buffer.concat([bytes, Buffer.from('!')]) });
    assert.equal(b.status, 400);
    await b.arrayBuffer();
    const c = await fetch(m.request.url, { method: 'PUT', body: bytes.subarray(1) });
    assert.equal(c.status, 400);
    await c.arrayBuffer();
    assert.ok(!existsSync(join(srv.dataDir, 'blobs', m.key)), 'no object after mismatched PUTs');
    // And a commit naming that upload is refused.
    const commit = await call('POST', '/v1/volumes/mismatch/commits', {
      json: {
        changes: [{ op: 'put', path: '/f', size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [m.hash] }],
        uploads: [{ hash: m.hash, key: m.key }],
      },
    });
    expectError(commit, 412, 'PreconditionFailed');
  });

  it('streams chunk uploads without buffering them (server RSS stays flat over 256 MiB)', {
    skip: process.platform !== 'linux' && 'reads /proc',
  }, async () => {
    // The server runs in a child process so that only its memory is measured, not this client's.
    const helper = new URL('./helpers/server.js', import.meta.url).href;
    const script = `import { startTestServer } from ${JSON.stringify(helper)};
      const s = await startTestServer();
      process.stdout.write(JSON.stringify({ url: s.url, token: s.token }) + '\\n');
      process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const remote = JSON.parse(String(line)) as { url: string; token: string };
      const memory = () => {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        return {
          rss: Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024,
          peak: Number(/VmHWM:\s+(\d+)/.exec(status)![1]) * 1024,
        };
      };
      const rcall = <T = any>(method: string, path: string, opts: CallOptions = {}) =>
        call<T>(method, path, { base: remote.url, token: remote.token, ...opts });
      assert.equal((await rcall('POST', '/v1/volumes', { json: { name: 'large', cap: 1024 ** 3 } })).status, 201);

      const block = randomBytes(1024 * 1024);
      const perChunk = LARGE_CHUNK_SIZE / block.length;
      const blockAt = (i: number) => {
        const b = Buffer.from(block);
        b.writeUInt32BE(i, 0);
        return b;
      };
      const chunks = 4;
      const hashes: string[] = [];
      const whole = createHash('sha256');
      for (let c = 0; c < chunks; c++) {
        const h = createHash('sha256');
        for (let i = 0; i < perChunk; i++) {
          h.update(blockAt(c * perChunk + i));
          whole.update(blockAt(c * perChunk + i));
        }
        hashes.push(h.digest('hex'));
      }
      const plan = await rcall<wire.UploadResponse>('POST', '/v1/volumes/large/uploads', {
        json: { chunks: hashes.map((hash) => ({ hash, size: LARGE_CHUNK_SIZE })) },
      });
      assert.equal(plan.status, 200, JSON.stringify(plan.body));
      assert.equal(plan.body.missing.length, chunks);

      const baseline = memory().rss;
      for (let c = 0; c < chunks; c++) {
        const m = plan.body.missing.find((x) => x.hash === hashes[c])!;
        let i = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (i < perChunk) controller.enqueue(blockAt(c * perChunk + i++));
            else controller.close();
          },
        });
        const res = await fetch(m.request.url, { method: 'PUT', body, duplex: 'half' } as RequestInit);
        assert.equal(res.status, 201, await res.clone().text());
        assert.deepEqual(await res.json(), { key: m.key, size: LARGE_CHUNK_SIZE });
      }
      const grew = (memory().peak - baseline) / 1024 / 1024;
      assert.ok(
        grew < 64,
        `server RSS peaked ${grew.toFixed(1)} MiB above its baseline while receiving ${chunks} x 64 MiB`,
      );

      const size = chunks * LARGE_CHUNK_SIZE;
      const commit = await rcall('POST', '/v1/volumes/large/commits', {
        json: {
          changes: [{ op: 'put', path: '/big.bin', size, chunkSize: LARGE_CHUNK_SIZE, chunks: hashes }],
          uploads: plan.body.missing.map((m) => ({ hash: m.hash, key: m.key })),
        },
      });
      assert.equal(commit.status, 201, JSON.stringify(commit.body));
      const readPlan = await rcall<wire.ReadPlan>('GET', '/v1/volumes/large/read?path=/big.bin');
      const back = createHash('sha256');
      for (const c of readPlan.body.chunks) {
        const got = await fetch(c.request.url);
        assert.equal(got.headers.get('content-length'), String(LARGE_CHUNK_SIZE));
        for await (const part of got.body as unknown as AsyncIterable<Uint8Array>) back.update(part);
      }
      assert.equal(back.digest('hex'), whole.digest('hex'));
      const grewAfterRead = (memory().peak - baseline) / 1024 / 1024;
      assert.ok(
        grewAfterRead < 64,
        `server RSS peaked ${grewAfterRead.toFixed(1)} MiB above its baseline while serving 256 MiB`,
      );
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('refuses a blob PUT larger than one object may be', async () => {
    const small = await startTestServer({ limits: { blobBodyBytes: 1024 } });
    try {
      await call('POST', '/v1/volumes', { base: small.url, token: small.token, json: { name: 'v' } });
      const bytes = randomBytes(2048);
      const plan = await call<wire.UploadResponse>('POST', '/v1/volumes/v/uploads', {
        base: small.url,
        token: small.token,
        json: { chunks: [{ hash: sha256(bytes), size: bytes.length }] },
      });
      const res = await fetch(plan.body.missing[0]!.request.url, { method: 'PUT', body: bytes });
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as wire.ErrorBody).error.code, 'PayloadTooLarge');
    } finally {
      await small.close();
    }
  });
});
