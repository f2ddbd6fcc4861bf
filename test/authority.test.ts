/**
 * The route × token table: every operation of /v1/openapi.json is called
 * with every kind of token, each time in a fresh world (a volume with a
 * file, a snapshot, two mounts, a sandbox running an exec (in memory), tokens
 * of every kind), and the answer must
 * be the one this table expects — allowed (2xx), ReadOnly, Forbidden or
 * NotFound (another volume's or tenant's objects are invisible). A route
 * added without a row here fails the test, and so does an answer the route's
 * OpenAPI entry does not document.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Actor, VolumeEngine } from '../src/engine/types.js';
import { Readable } from 'node:stream';
import { FakeSandboxRuntime } from '../src/engine/fake-sandbox-runtime.test-helper.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** The token kinds (engine/authority), plus tokens that reach the wrong volume or tenant. */
const KINDS = ['admin', 'tenantRO', 'volume', 'volumeRO', 'mount', 'mountRO', 'otherVolume', 'otherTenant'] as const;
type Kind = (typeof KINDS)[number];

/** ok: a 2xx; ro: 403 ReadOnly; no: 403 Forbidden; nf: 404 NotFound. */
type Outcome = 'ok' | 'ro' | 'no' | 'nf';

/** One row per operation: the outcome for each kind, in KINDS order. */
const EXPECT: Record<string, string> = {
  // tenant and tokens          admin tenRO vol  volRO mount mntRO otherV otherT
  getTenant: 'ok    ok    no   no    no    no    no     ok',
  updateTenant: 'ok    ro    no   no    no    no    no     ok',
  listTokens: 'ok    ok    no   no    no    no    no     ok',
  createToken: 'ok    ro    no   no    no    no    no     ok',
  revokeToken: 'ok    ro    no   no    no    no    no     nf',
  // volumes
  listVolumes: 'ok    ok    ok   ok    ok    ok    ok     ok',
  createVolume: 'ok    ro    no   no    no    no    no     ok',
  putVolume: 'ok    ro    no   no    no    no    no     ok',
  getVolume: 'ok    ok    ok   ok    ok    ok    nf     nf',
  updateVolume: 'ok    ro    no   no    no    no    no     nf',
  deleteVolume: 'ok    ro    no   no    no    no    no     nf',
  forkVolume: 'ok    ro    no   no    no    no    no     nf',
  // writes
  prepareChunkUploads: 'ok    ro    ok   ro    ok    ro    nf     nf',
  preparePackUpload: 'ok    ro    ok   ro    ok    ro    nf     nf',
  createCommit: 'ok    ro    ok   ro    ok    ro    nf     nf',
  createSnapshot: 'ok    ro    ok   ro    ok    ro    nf     nf',
  deleteSnapshot: 'ok    ro    ok   ro    ok    ro    nf     nf',
  restoreVolume: 'ok    ro    ok   ro    ok    ro    nf     nf',
  replaceInFiles: 'ok    ro    ok   ro    ok    ro    nf     nf',
  editFile: 'ok    ro    ok   ro    ok    ro    nf     nf',
  createUpload: 'ok    ro    ok   ro    ok    ro    nf     nf',
  // reads
  listCommits: 'ok    ok    ok   ok    ok    ok    nf     nf',
  listSnapshots: 'ok    ok    ok   ok    ok    ok    nf     nf',
  statFile: 'ok    ok    ok   ok    ok    ok    nf     nf',
  listFiles: 'ok    ok    ok   ok    ok    ok    nf     nf',
  getReadPlan: 'ok    ok    ok   ok    ok    ok    nf     nf',
  downloadFile: 'ok    ok    ok   ok    ok    ok    nf     nf',
  downloadArchive: 'ok    ok    ok   ok    ok    ok    nf     nf',
  searchFiles: 'ok    ok    ok   ok    ok    ok    nf     nf',
  watchChanges: 'ok    ok    ok   ok    ok    ok    nf     nf',
  listChanges: 'ok    ok    ok   ok    ok    ok    nf     nf',
  createSignedUrl: 'ok    ok    ok   ok    ok    ok    nf     nf',
  // attachments: the target is the "mount" kind's own mount, made by the admin token
  attachVolume: 'ok    ok    ok   ok    no    no    nf     nf',
  listAttachments: 'ok    ok    ok   ok    ok    ok    nf     nf',
  renewAttachment: 'ok    ro    no   no    ok    no    nf     nf',
  releaseAttachment: 'ok    ro    no   no    ok    no    nf     nf',
  // resumable uploads: the target upload was created by the admin token
  getUploadOffset: 'ok    nf    nf   nf    nf    nf    nf     nf',
  appendUpload: 'ok    nf    nf   nf    nf    nf    nf     nf',
  deleteUpload: 'ok    nf    nf   nf    nf    nf    nf     nf',
  // sandboxes: the tenant's, read by tenant tokens, run by admin tokens only; nothing for scoped or mount tokens
  createSandbox: 'ok    ro    no   no    no    no    no     ok',
  listSandboxes: 'ok    ok    no   no    no    no    no     ok',
  getSandbox: 'ok    ok    no   no    no    no    no     nf',
  terminateSandbox: 'ok    ro    no   no    no    no    no     nf',
  createExec: 'ok    ro    no   no    no    no    no     nf',
  listExecs: 'ok    ok    no   no    no    no    no     nf',
  getExec: 'ok    ok    no   no    no    no    no     nf',
  streamExecOutput: 'ok    ok    no   no    no    no    no     nf',
  writeExecStdin: 'ok    ro    no   no    no    no    no     nf',
  signalExec: 'ok    ro    no   no    no    no    no     nf',
  resizeExec: 'ok    ro    no   no    no    no    no     nf',
  writeSandboxFile: 'ok    ro    no   no    no    no    no     nf',
  readSandboxFile: 'ok    ok    no   no    no    no    no     nf',
  statSandboxFile: 'ok    ok    no   no    no    no    no     nf',
  listSandboxFiles: 'ok    ok    no   no    no    no    no     nf',
  removeSandboxFile: 'ok    ro    no   no    no    no    no     nf',
  mkdirSandboxFile: 'ok    ro    no   no    no    no    no     nf',
};

/** Operations that take no bearer token: their URL (or nothing) is the credential. */
const PUBLIC = new Set(['getHealth', 'getBlob', 'putBlob', 'getSharedFile']);

/** Operations on an existing resumable upload (the world then holds one). */
const ON_AN_UPLOAD = new Set(['getUploadOffset', 'appendUpload', 'deleteUpload']);

const UPLOAD_DATA = Buffer.from('resumable bytes');
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** Everything one request may touch, created anew for every (operation, kind). */
interface World {
  volume: string;
  tokens: Record<Kind, string>;
  attachmentId: string;
  throwawayTokenId: string;
  uploadUrl?: string;
  /** A running sandbox of the admin's tenant holding /f.txt, and a running exec in it reading stdin. */
  sandbox: string;
  exec: string;
}

interface Call {
  method: string;
  path: string;
  query?: Record<string, string>;
  json?: unknown;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

/** A valid request for each operation, so "allowed" can only mean a 2xx. */
const REQUESTS: Record<string, (w: World) => Call> = {
  getTenant: () => ({ method: 'GET', path: '/v1/tenant' }),
  updateTenant: () => ({ method: 'PATCH', path: '/v1/tenant', json: { defaultCap: 3 * 2 ** 30 } }),
  listTokens: () => ({ method: 'GET', path: '/v1/tokens' }),
  createToken: () => ({ method: 'POST', path: '/v1/tokens', json: { name: 'minted' } }),
  revokeToken: (w) => ({ method: 'DELETE', path: `/v1/tokens/${w.throwawayTokenId}` }),
  listVolumes: () => ({ method: 'GET', path: '/v1/volumes' }),
  createVolume: (w) => ({ method: 'POST', path: '/v1/volumes', json: { name: `${w.volume}-new` } }),
  putVolume: (w) => ({ method: 'PUT', path: `/v1/volumes/${w.volume}-new`, json: {} }),
  getVolume: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}` }),
  updateVolume: (w) => ({ method: 'PATCH', path: `/v1/volumes/${w.volume}`, json: { cap: 3 * 2 ** 30 } }),
  deleteVolume: (w) => ({ method: 'DELETE', path: `/v1/volumes/${w.volume}` }),
  forkVolume: (w) => ({ method: 'POST', path: `/v1/volumes/${w.volume}/fork`, json: { name: `${w.volume}-fork` } }),
  prepareChunkUploads: (w) => ({
    method: 'POST',
    path: `/v1/volumes/${w.volume}/uploads`,
    json: { chunks: [{ hash: sha('new chunk'), size: 9 }] },
  }),
  preparePackUpload: (w) => ({
    method: 'POST',
    path: `/v1/volumes/${w.volume}/packs`,
    json: { size: 9, sha256: sha('new chunk') },
  }),
  createCommit: (w) => ({
    method: 'POST',
    path: `/v1/volumes/${w.volume}/commits`,
    json: { changes: [{ op: 'mkdir', path: '/made' }] },
  }),
  createSnapshot: (w) => ({ method: 'POST', path: `/v1/volumes/${w.volume}/snapshots`, json: { name: 's2' } }),
  deleteSnapshot: (w) => ({ method: 'DELETE', path: `/v1/volumes/${w.volume}/snapshots/s1` }),
  restoreVolume: (w) => ({ method: 'POST', path: `/v1/volumes/${w.volume}/restore`, json: { snapshot: 's1' } }),
  replaceInFiles: (w) => ({
    method: 'POST',
    path: `/v1/volumes/${w.volume}/replace`,
    json: { glob: '**', regex: 'hello', replacement: 'howdy' },
  }),
  editFile: (w) => ({
    method: 'POST',
    path: `/v1/volumes/${w.volume}/edit`,
    json: { path: '/f.txt', oldString: 'hello', newString: 'howdy' },
  }),
  createUpload: (w) => ({
    method: 'POST',
    path: '/v1/uploads',
    headers: {
      'tus-resumable': '1.0.0',
      'upload-length': String(UPLOAD_DATA.length),
      'upload-metadata': tusMetadata({ volume: w.volume, path: '/up.bin', sha256: sha(UPLOAD_DATA) }),
    },
  }),
  listCommits: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/commits` }),
  listSnapshots: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/snapshots` }),
  statFile: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/stat`, query: { path: '/f.txt' } }),
  listFiles: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/list`, query: { path: '/' } }),
  getReadPlan: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/read`, query: { path: '/f.txt' } }),
  downloadFile: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/content`, query: { path: '/f.txt' } }),
  downloadArchive: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/archive`, query: { path: '/' } }),
  searchFiles: (w) => ({ method: 'POST', path: `/v1/volumes/${w.volume}/search`, json: { glob: '**' } }),
  watchChanges: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/watch` }),
  listChanges: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/changes` }),
  createSignedUrl: (w) => ({ method: 'POST', path: `/v1/volumes/${w.volume}/urls`, json: { path: '/f.txt' } }),
  attachVolume: (w) => ({
    method: 'POST',
    path: `/v1/volumes/${w.volume}/attachments`,
    json: { host: 'h', path: '/mnt/new', readOnly: true },
  }),
  listAttachments: (w) => ({ method: 'GET', path: `/v1/volumes/${w.volume}/attachments` }),
  renewAttachment: (w) => ({ method: 'POST', path: `/v1/attachments/${w.attachmentId}/renew` }),
  releaseAttachment: (w) => ({ method: 'POST', path: `/v1/attachments/${w.attachmentId}/release`, json: {} }),
  getUploadOffset: (w) => ({ method: 'HEAD', path: w.uploadUrl!, headers: { 'tus-resumable': '1.0.0' } }),
  appendUpload: (w) => ({
    method: 'PATCH',
    path: w.uploadUrl!,
    body: UPLOAD_DATA,
    headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
  }),
  deleteUpload: (w) => ({ method: 'DELETE', path: w.uploadUrl!, headers: { 'tus-resumable': '1.0.0' } }),
  createSandbox: () => ({ method: 'POST', path: '/v1/sandboxes', json: { image: { base: 'busybox' } } }),
  listSandboxes: () => ({ method: 'GET', path: '/v1/sandboxes' }),
  getSandbox: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}` }),
  terminateSandbox: (w) => ({ method: 'POST', path: `/v1/sandboxes/${w.sandbox}/terminate` }),
  createExec: (w) => ({ method: 'POST', path: `/v1/sandboxes/${w.sandbox}/execs`, json: { argv: ['echo', 'hi'] } }),
  listExecs: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}/execs` }),
  getExec: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}/execs/${w.exec}` }),
  streamExecOutput: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}/execs/${w.exec}/output` }),
  writeExecStdin: (w) => ({
    method: 'POST',
    path: `/v1/sandboxes/${w.sandbox}/execs/${w.exec}/stdin`,
    body: Buffer.from('typed'),
    headers: { 'content-type': 'application/octet-stream' },
  }),
  signalExec: (w) => ({
    method: 'POST',
    path: `/v1/sandboxes/${w.sandbox}/execs/${w.exec}/signal`,
    json: { signal: 'SIGTERM' },
  }),
  resizeExec: (w) => ({
    method: 'POST',
    path: `/v1/sandboxes/${w.sandbox}/execs/${w.exec}/resize`,
    json: { rows: 40, cols: 120 },
  }),
  writeSandboxFile: (w) => ({
    method: 'PUT',
    path: `/v1/sandboxes/${w.sandbox}/files`,
    query: { path: '/g.txt' },
    body: Buffer.from('written'),
    headers: { 'content-type': 'application/octet-stream' },
  }),
  readSandboxFile: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}/files`, query: { path: '/f.txt' } }),
  statSandboxFile: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}/files/stat`, query: { path: '/f.txt' } }),
  listSandboxFiles: (w) => ({ method: 'GET', path: `/v1/sandboxes/${w.sandbox}/files/list`, query: { path: '/' } }),
  removeSandboxFile: (w) => ({ method: 'DELETE', path: `/v1/sandboxes/${w.sandbox}/files`, query: { path: '/f.txt' } }),
  mkdirSandboxFile: (w) => ({ method: 'POST', path: `/v1/sandboxes/${w.sandbox}/files/mkdir`, json: { path: '/d' } }),
};

function tusMetadata(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

function expected(operationId: string): Record<Kind, Outcome> {
  const cells = EXPECT[operationId]!.trim().split(/\s+/);
  assert.equal(cells.length, KINDS.length, `row ${operationId} has ${cells.length} cells`);
  return Object.fromEntries(KINDS.map((k, i) => [k, cells[i] as Outcome])) as Record<Kind, Outcome>;
}

interface Operation {
  id: string;
  method: string;
  path: string;
  documented: Set<string>;
}

describe('authority: every route with every kind of token', () => {
  let srv: TestServer;
  let engine: VolumeEngine;
  let admin: Actor;
  let otherTenantToken: string;
  let operations: Operation[];
  let n = 0;

  before(async () => {
    // Sandboxes run in memory: this test is about who may call what, not about isolation.
    srv = await startTestServer({ sandboxRuntime: new FakeSandboxRuntime() });
    engine = srv.engine;
    admin = await engine.authenticate(srv.token);
    otherTenantToken = (await engine.createTenant('authority-other')).secret;
    const doc = (await (await fetch(`${srv.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>>;
    };
    operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        assert.ok(op.operationId, `${method.toUpperCase()} ${path} has no operationId`);
        return {
          id: op.operationId,
          method: method.toUpperCase(),
          path,
          documented: new Set(Object.keys(op.responses)),
        };
      }),
    );
  });
  after(async () => {
    await srv?.close();
  });

  async function world(needsUpload: boolean): Promise<World> {
    const volume = `w${++n}`;
    await engine.createVolume(admin, volume, { accessMode: 'RWX' });
    await engine.createVolume(admin, `${volume}-other`);
    await engine.writeFile(
      admin,
      volume,
      '/f.txt',
      (async function* () {
        yield Buffer.from('hello world\n');
      })(),
    );
    await engine.createSnapshot(admin, volume, { name: 's1' });
    const mint = async (req: { volume?: string; readOnly?: boolean }) =>
      (await engine.createToken(admin, { name: `t${n}`, ...req })).secret;
    const mount = await engine.attach(admin, volume, { host: 'h', path: '/m' });
    const mountRO = await engine.attach(admin, volume, { host: 'h', path: '/r', readOnly: true });
    const sandbox = await engine.createSandbox(admin, { image: { base: 'busybox' } });
    await engine.writeSandboxFile(admin, sandbox.id, '/f.txt', Readable.from([Buffer.from('in the sandbox')]));
    const exec = await engine.execSandbox(admin, sandbox.id, { argv: ['cat'], stdin: true });
    const w: World = {
      volume,
      tokens: {
        admin: srv.token,
        tenantRO: await mint({ readOnly: true }),
        volume: await mint({ volume }),
        volumeRO: await mint({ volume, readOnly: true }),
        mount: mount.secret,
        mountRO: mountRO.secret,
        otherVolume: await mint({ volume: `${volume}-other` }),
        otherTenant: otherTenantToken,
      },
      attachmentId: mount.attachment.id,
      throwawayTokenId: (await engine.createToken(admin, { name: 'throwaway' })).token.id,
      sandbox: sandbox.id,
      exec: exec.id,
    };
    if (needsUpload) {
      const c = REQUESTS.createUpload!(w);
      const res = await fetch(`${srv.url}${c.path}`, {
        method: 'POST',
        headers: { ...c.headers, authorization: `Bearer ${srv.token}` },
      });
      assert.equal(res.status, 201);
      w.uploadUrl = new URL(res.headers.get('location')!, `${srv.url}/v1/uploads`).pathname;
    }
    return w;
  }

  async function send(c: Call, token: string | null): Promise<{ status: number; code?: string }> {
    const url = new URL(`${srv.url}${c.path}`);
    for (const [k, v] of Object.entries(c.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { ...(c.headers ?? {}) };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (c.json !== undefined) headers['content-type'] = 'application/json';
    const abort = new AbortController();
    const res = await fetch(url, {
      method: c.method,
      headers,
      signal: abort.signal,
      ...(c.json !== undefined ? { body: JSON.stringify(c.json) } : c.body ? { body: c.body } : {}),
    });
    if (res.status < 400) {
      abort.abort(); // a watch streams forever: the status is all this test needs
      return { status: res.status };
    }
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      /* tus may answer plain text */
    }
    return { status: res.status, ...(code ? { code } : {}) };
  }

  it('every operation has a row, and every row an operation', () => {
    const ids = operations.map((o) => o.id);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const id of ids)
      assert.ok(
        EXPECT[id] !== undefined || PUBLIC.has(id),
        `no authority row for operation ${id}: add it to EXPECT (or PUBLIC)`,
      );
    for (const id of [...Object.keys(EXPECT), ...PUBLIC])
      assert.ok(ids.includes(id), `row ${id} names no operation of /v1/openapi.json`);
    for (const id of Object.keys(EXPECT)) assert.ok(REQUESTS[id], `no request for ${id}`);
  });

  it('answers each kind of token as the table says, with a documented status', { timeout: 300_000 }, async () => {
    const failures: string[] = [];
    for (const op of operations.filter((o) => !PUBLIC.has(o.id))) {
      const want = expected(op.id);
      for (const kind of KINDS) {
        const w = await world(ON_AN_UPLOAD.has(op.id));
        const got = await send(REQUESTS[op.id]!(w), w.tokens[kind]);
        const ok =
          want[kind] === 'ok'
            ? got.status >= 200 && got.status < 300
            : want[kind] === 'ro'
              ? got.status === 403 && got.code === 'ReadOnly'
              : want[kind] === 'no'
                ? got.status === 403 && got.code === 'Forbidden'
                : got.status === 404;
        if (!ok) failures.push(`${op.id} with ${kind}: expected ${want[kind]}, got ${got.status} ${got.code ?? ''}`);
        if (!op.documented.has(String(got.status)))
          failures.push(`${op.id}: answered ${got.status} to ${kind}, which its OpenAPI entry does not list`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it('refuses a missing, revoked or expired token on every authenticated operation with 401', {
    timeout: 120_000,
  }, async () => {
    const w = await world(true);
    const revoked = await engine.createToken(admin, { name: 'revoked' });
    await engine.revokeToken(admin, revoked.token.id);
    const expired = await engine.createToken(admin, { name: 'expired', expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const failures: string[] = [];
    for (const op of operations.filter((o) => !PUBLIC.has(o.id))) {
      for (const [label, token] of [
        ['none', null],
        ['revoked', revoked.secret],
        ['expired', expired.secret],
        ['garbage', 'tok_nothing.secret'],
      ] as const) {
        const got = await send(REQUESTS[op.id]!(w), token);
        if (got.status !== 401) failures.push(`${op.id} with ${label} token: ${got.status}`);
        if (!op.documented.has('401')) failures.push(`${op.id}: 401 not documented`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it('public operations take no token; signed ones refuse a request without a valid signature', async () => {
    assert.equal((await fetch(`${srv.url}/v1/health`)).status, 200);
    assert.equal((await fetch(`${srv.url}/v1/blobs/chunks/ab/x`)).status, 403);
    assert.equal((await fetch(`${srv.url}/v1/blobs/chunks/ab/x`, { method: 'PUT', body: 'x' })).status, 403);
    assert.equal((await fetch(`${srv.url}/v1/shared/vol_x/f.txt`)).status, 403);
  });
});
