/**
 * @module test/uploads.test
 * End-to-end tests of uploads (SPEC section 4) against a real server over
 * loopback: the tus endpoint spoken with plain fetch (protocol basics,
 * ownership, cap, hostile input), `vol.upload` for directories (one commit,
 * modes, symlinks, escaping symlinks neutralised) and streams, and the real
 * `stowage upload` binary, including a resumable upload killed with SIGKILL
 * and run again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { Stowage, Volume, isStowageError } from '@stowage/sdk';
import { escapeReason } from '@stowage/sdk/client/upload.js';
import { parseTusMetadata } from '../src/server/routes/uploads-routes.js';
import { startServer } from '../src/server/serve.js';
import { cliEnv, pattern, spawnCli, type CliResult } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let work: string;
let client: Stowage;
let seq = 0;
const fresh = (prefix = 'u'): string => `${prefix}-${process.pid}-${++seq}`;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const metadata = (m: Record<string, string>): string =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');

function tusHeaders(token: string, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', ...extra };
}

async function createUpload(
  token: string,
  m: Record<string, string>,
  length: number,
  extra: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${srv.url}/v1/uploads`, {
    method: 'POST',
    headers: tusHeaders(token, { 'upload-length': String(length), 'upload-metadata': metadata(m), ...extra }),
  });
}

function uploadUrl(res: Response): string {
  const loc = res.headers.get('location');
  assert.ok(loc, 'Location header');
  return new URL(loc, `${srv.url}/v1/uploads`).toString();
}

async function patch(url: string, token: string, offset: number, body: Uint8Array): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: tusHeaders(token, { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }),
    body,
  });
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code: string } };
  return body.error.code;
}

/** Names of staging files (not their .json sidecars) in the server's uploads dir. */
async function stagingFiles(): Promise<string[]> {
  const names = await readdir(join(srv.dataDir, 'uploads')).catch(() => [] as string[]);
  return names.filter((n) => /^[0-9a-f]{32}$/.test(n));
}

/** Staging files of uploads into `volumeName` (their .json sidecars hold the upload metadata). */
async function stagingFor(volumeName: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await stagingFiles()) {
    const sidecar = await readFile(join(srv.dataDir, 'uploads', `${name}.json`), 'utf8').catch(() => '{}');
    if ((JSON.parse(sidecar) as { metadata?: { volume?: string } }).metadata?.volume === volumeName) out.push(name);
  }
  return out;
}

type Result = CliResult;

function envFor(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token, STOWAGE_DATA: join(work, 'no-data'), ...overrides });
}

function startCli(
  args: string[],
  env: Record<string, string> = {},
  input?: Buffer,
): { child: ChildProcess; done: Promise<Result> } {
  return spawnCli(args, { env: envFor(env), ...(input !== undefined ? { input } : {}) });
}

const cli = (args: string[], env: Record<string, string> = {}, input?: Buffer): Promise<Result> =>
  startCli(args, env, input).done;

function ok(r: Result): string {
  assert.equal(r.status, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r.stdout;
}

async function volume(name = fresh(), cap?: string): Promise<Volume> {
  return Volume.get(name, { client, mintIfMissing: true, ...(cap !== undefined ? { cap } : {}) });
}

before(async () => {
  srv = await startTestServer();
  work = await mkdtemp(join(tmpdir(), 'stowage-upload-test-'));
  client = new Stowage({ url: srv.url, token: srv.token });
});

after(async () => {
  await srv?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('tus endpoint', () => {
  test('speaks tus 1.0.0: OPTIONS, POST, PATCH, HEAD, offset conflicts, commit on the last byte', async () => {
    const vol = await volume();
    const opt = await fetch(`${srv.url}/v1/uploads`, {
      method: 'OPTIONS',
      headers: { authorization: `Bearer ${srv.token}` },
    });
    assert.equal(opt.status, 204);
    assert.equal(opt.headers.get('tus-version'), '1.0.0');
    assert.match(opt.headers.get('tus-extension') ?? '', /creation/);
    assert.match(opt.headers.get('tus-extension') ?? '', /termination/);
    assert.doesNotMatch(opt.headers.get('tus-extension') ?? '', /defer-length/);

    const data = pattern(300_000, 7);
    const created = await createUpload(
      srv.token,
      { volume: vol.name, path: '/t/data.bin', sha256: sha256(data), mode: '640' },
      data.length,
    );
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('tus-resumable'), '1.0.0');
    const url = uploadUrl(created);

    const first = await patch(url, srv.token, 0, data.subarray(0, 100_000));
    assert.equal(first.status, 204);
    assert.equal(first.headers.get('upload-offset'), '100000');
    const head = await fetch(url, { method: 'HEAD', headers: tusHeaders(srv.token) });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), '100000');
    assert.equal(head.headers.get('upload-length'), String(data.length));
    assert.equal(head.headers.get('cache-control'), 'no-store');

    // Wrong offset: 409, nothing appended.
    assert.equal((await patch(url, srv.token, 5, data.subarray(5, 10))).status, 409);
    // Missing Tus-Resumable: 412.
    // Wrong content type of a PATCH: refused.
    const badType = await fetch(url, {
      method: 'PATCH',
      headers: tusHeaders(srv.token, { 'upload-offset': '100000', 'content-type': 'application/json' }),
      body: '{}',
    });
    assert.ok(badType.status >= 400 && badType.status < 500, `status ${badType.status}`);

    const last = await patch(url, srv.token, 100_000, data.subarray(100_000));
    assert.equal(last.status, 204);
    const commit = last.headers.get('stowage-commit');
    assert.match(commit ?? '', /^[0-9a-f]{64}$/);
    await vol.refresh();
    assert.equal(vol.info.head, commit);
    assert.deepEqual(await vol.files.read('/t/data.bin'), data);
    assert.equal((await vol.files.stat('/t/data.bin')).mode, 0o640);
    // Finished uploads are gone (staging deleted); a HEAD still names the commit, for a client that missed the answer.
    assert.deepEqual(await stagingFor(vol.name), []);
    const after = await fetch(url, { method: 'HEAD', headers: tusHeaders(srv.token) });
    assert.equal(after.status, 200);
    assert.equal(after.headers.get('upload-offset'), String(data.length));
    assert.equal(after.headers.get('upload-length'), String(data.length));
    assert.equal(after.headers.get('stowage-commit'), commit);
    // ...to its owner only: another tenant sees no such upload.
    const { secret } = await srv.engine.createTenant(fresh('tenant'));
    assert.equal((await fetch(url, { method: 'HEAD', headers: tusHeaders(secret) })).status, 404);
    assert.equal((await patch(url, srv.token, data.length, Buffer.from('x'))).status, 404);
  });

  test('DELETE abandons an unfinished upload', async () => {
    const vol = await volume();
    const url = uploadUrl(
      await createUpload(srv.token, { volume: vol.name, path: '/x', sha256: sha256(Buffer.from('abc')) }, 3),
    );
    assert.equal((await patch(url, srv.token, 0, Buffer.from('a'))).status, 204);
    assert.equal((await fetch(url, { method: 'DELETE', headers: tusHeaders(srv.token) })).status, 204);
    assert.equal((await fetch(url, { method: 'HEAD', headers: tusHeaders(srv.token) })).status, 404);
    assert.equal(await vol.files.exists('/x'), false);
  });

  test('an upload belongs to the token that created it: another token of the same volume gets 404, an admin may finish it', async () => {
    const vol = await volume();
    const { secret: creator } = await client.createToken({ name: fresh('creator'), volume: vol.name });
    const { secret: sibling } = await client.createToken({ name: fresh('sibling'), volume: vol.name });
    const data = Buffer.from('abcdef');
    const url = uploadUrl(
      await createUpload(creator, { volume: vol.name, path: '/mine.bin', sha256: sha256(data) }, 6),
    );
    assert.equal((await patch(url, creator, 0, data.subarray(0, 2))).status, 204);
    // A sibling token of the same volume can neither see its progress, finish it with other bytes, nor abandon it.
    assert.equal((await fetch(url, { method: 'HEAD', headers: tusHeaders(sibling) })).status, 404);
    assert.equal((await patch(url, sibling, 2, data.subarray(2))).status, 404);
    assert.equal((await fetch(url, { method: 'DELETE', headers: tusHeaders(sibling) })).status, 404);
    assert.equal((await patch(url, creator, 2, data.subarray(2, 4))).status, 204);
    // The tenant's admin token may (an operator cleaning up, or finishing it).
    assert.equal(
      (await fetch(url, { method: 'HEAD', headers: tusHeaders(srv.token) })).headers.get('upload-offset'),
      '4',
    );
    assert.equal((await patch(url, srv.token, 4, data.subarray(4))).status, 204);
    assert.deepEqual(await vol.files.read('/mine.bin'), data);
  });

  test('another tenant, or a token scoped to another volume, gets 404 on HEAD, PATCH and DELETE', async () => {
    const vol = await volume();
    const other = await volume();
    const url = uploadUrl(
      await createUpload(
        srv.token,
        { volume: vol.name, path: '/secret.bin', sha256: sha256(Buffer.from('abcdef')) },
        6,
      ),
    );
    assert.equal((await patch(url, srv.token, 0, Buffer.from('abc'))).status, 204);

    const { secret: foreign } = await srv.engine.createTenant(fresh('tenant'));
    const { secret: scoped } = await client.createToken({ name: fresh('scoped'), volume: other.name });
    for (const token of [foreign, scoped]) {
      const head = await fetch(url, { method: 'HEAD', headers: tusHeaders(token) });
      assert.equal(head.status, 404);
      assert.equal(head.headers.get('upload-offset'), null);
      const p = await patch(url, token, 3, Buffer.from('XYZ'));
      assert.equal(p.status, 404);
      assert.equal(await errorCode(p), 'NotFound');
      assert.equal((await fetch(url, { method: 'DELETE', headers: tusHeaders(token) })).status, 404);
      // Nor can it start an upload into the volume.
      const c = await createUpload(token, { volume: vol.name, path: '/x', sha256: sha256(Buffer.from('abc')) }, 3);
      assert.equal(c.status, 404);
    }
    // The owner's upload is untouched and completes.
    const head = await fetch(url, { method: 'HEAD', headers: tusHeaders(srv.token) });
    assert.equal(head.headers.get('upload-offset'), '3');
    assert.equal((await patch(url, srv.token, 3, Buffer.from('def'))).status, 204);
    assert.equal((await vol.files.read('/secret.bin')).toString(), 'abcdef');
  });

  test('a read-only token cannot create uploads; no token is 401', async () => {
    const vol = await volume();
    const { secret } = await client.createToken({ name: fresh('ro'), readOnly: true });
    const res = await createUpload(secret, { volume: vol.name, path: '/x', sha256: sha256(Buffer.from('abc')) }, 3);
    assert.equal(res.status, 403);
    assert.equal(await errorCode(res), 'ReadOnly');
    const anon = await fetch(`${srv.url}/v1/uploads`, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '3' },
    });
    assert.equal(anon.status, 401);
  });

  test('over-cap uploads are refused at creation with 413 QuotaExceeded naming cap and size; nothing is staged or written', async () => {
    const vol = await volume(fresh(), '1M');
    const before = vol.info.head;
    const stagedBefore = await stagingFiles();
    const res = await createUpload(
      srv.token,
      { volume: vol.name, path: '/big.bin', sha256: sha256(Buffer.from('x')) },
      2 * MiB,
    );
    assert.equal(res.status, 413);
    const body = (await res.json()) as {
      error: { code: string; message: string; details: { cap: number; size: number } };
    };
    assert.equal(body.error.code, 'QuotaExceeded');
    assert.equal(body.error.details.cap, MiB);
    assert.equal(body.error.details.size, 2 * MiB);
    assert.match(body.error.message, /capped at 1 MiB/);
    assert.deepEqual(await stagingFiles(), stagedBefore);
    await vol.refresh();
    assert.equal(vol.info.head, before);
  });

  test('content that does not match the announced SHA-256 is refused with 400 and nothing is committed', async () => {
    const vol = await volume();
    const before = vol.info.head;
    const url = uploadUrl(
      await createUpload(srv.token, { volume: vol.name, path: '/v.bin', sha256: sha256(Buffer.from('good')) }, 4),
    );
    const res = await patch(url, srv.token, 0, Buffer.from('evil'));
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'InvalidArgument');
    assert.match(body.error.message, /SHA-256/);
    await vol.refresh();
    assert.equal(vol.info.head, before);
    assert.equal(await vol.files.exists('/v.bin'), false);
    // The staging file is gone, so a client retrying starts afresh instead of "finishing" the refused bytes.
    assert.equal((await fetch(url, { method: 'HEAD', headers: tusHeaders(srv.token) })).status, 404);
  });

  test('hostile creation requests are refused with clear 4xx', async () => {
    const vol = await volume();
    const sha = sha256(Buffer.from('abc'));
    const cases: Array<[Record<string, string>, Record<string, string>, number, number, RegExp]> = [
      [{ path: '/a', sha256: sha }, {}, 3, 400, /"volume" is required/],
      [{ volume: vol.name, sha256: sha }, {}, 3, 400, /"path" is required/],
      [{ volume: vol.name, path: '/a' }, {}, 3, 400, /"sha256" is required/],
      [{ volume: vol.name, path: '/a', sha256: 'abc' }, {}, 3, 400, /64 hex/],
      [{ volume: vol.name, path: '/../etc/passwd', sha256: sha }, {}, 3, 400, /./],
      [{ volume: vol.name, path: 'relative', sha256: sha }, {}, 3, 400, /./],
      [{ volume: vol.name, path: '/', sha256: sha }, {}, 3, 400, /root/],
      [{ volume: vol.name, path: '/a', sha256: sha, mode: '999' }, {}, 3, 400, /octal/],
      [{ volume: 'NO/SUCH', path: '/a', sha256: sha }, {}, 3, 400, /./],
      [{ volume: fresh('missing'), path: '/a', sha256: sha }, {}, 3, 404, /./],
    ];
    for (const [m, extra, len, status, re] of cases) {
      const res = await createUpload(srv.token, m, len, extra);
      assert.equal(res.status, status, JSON.stringify(m));
      assert.match(((await res.json()) as { error: { message: string } }).error.message, re);
    }
    const raw = async (headers: Record<string, string>) =>
      fetch(`${srv.url}/v1/uploads`, { method: 'POST', headers: tusHeaders(srv.token, headers) });
    assert.equal(
      (
        await raw({
          'upload-defer-length': '1',
          'upload-metadata': metadata({ volume: vol.name, path: '/a', sha256: sha }),
        })
      ).status,
      400,
    );
    assert.equal(
      (await raw({ 'upload-length': '-1', 'upload-metadata': metadata({ volume: vol.name, path: '/a', sha256: sha }) }))
        .status,
      400,
    );
    assert.equal((await raw({ 'upload-length': '3', 'upload-metadata': 'volume !!notbase64' })).status, 400);
    assert.equal(
      (await raw({ 'upload-length': '3', 'upload-metadata': `volume ${b64(vol.name)},volume ${b64(vol.name)}` }))
        .status,
      400,
    );
    // Ids that are not upload ids, traversal attempts, other methods.
    for (const id of ['nope', '..%2F..%2Fmetadata.db', '0123456789abcdef0123456789abcdef']) {
      assert.equal(
        (await fetch(`${srv.url}/v1/uploads/${id}`, { method: 'HEAD', headers: tusHeaders(srv.token) })).status,
        404,
      );
    }
    assert.equal(
      (await fetch(`${srv.url}/v1/uploads/0123456789abcdef0123456789abcdef`, { headers: tusHeaders(srv.token) }))
        .status,
      404,
    );
    assert.equal((await fetch(`${srv.url}/v1/uploads`, { headers: tusHeaders(srv.token) })).status, 404);
  });

  test('abandoned staging files expire: the server sweeps them when it starts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'stowage-upload-expiry-'));
    try {
      const first = await startServer({ dataDir, port: 0, log: () => undefined });
      const token = first.adminToken!;
      await new Stowage({ url: first.url, token }).request('PUT', '/v1/volumes/exp', { body: {} });
      const res = await fetch(`${first.url}/v1/uploads`, {
        method: 'POST',
        headers: tusHeaders(token, {
          'upload-length': '10',
          'upload-metadata': metadata({ volume: 'exp', path: '/a', sha256: sha256(Buffer.from('0123456789')) }),
        }),
      });
      assert.equal(res.status, 201);
      const staged = async () => (await readdir(join(dataDir, 'uploads'))).length;
      assert.equal(await staged(), 2); // the bytes and their .json sidecar
      await first.close();
      await new Promise((r) => setTimeout(r, 20));
      const second = await startServer({ dataDir, port: 0, log: () => undefined, uploadExpiryMs: 10 });
      try {
        const deadline = Date.now() + 5000;
        while ((await staged()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        assert.equal(await staged(), 0);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('an upload whose bytes all arrived but whose server stopped before committing is committed by the next HEAD', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'stowage-upload-crash-'));
    try {
      const data = pattern(100_000, 71);
      const first = await startServer({ dataDir, port: 0, log: () => undefined });
      const token = first.adminToken!;
      await new Stowage({ url: first.url, token }).request('PUT', '/v1/volumes/crash', { body: {} });
      const res = await fetch(`${first.url}/v1/uploads`, {
        method: 'POST',
        headers: tusHeaders(token, {
          'upload-length': String(data.length),
          'upload-metadata': metadata({ volume: 'crash', path: '/c.bin', sha256: sha256(data) }),
        }),
      });
      assert.equal(res.status, 201);
      const id = res.headers.get('location')!.split('/').pop()!;
      const part = await fetch(`${first.url}/v1/uploads/${id}`, {
        method: 'PATCH',
        headers: tusHeaders(token, { 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }),
        body: data.subarray(0, 60_000),
      });
      assert.equal(part.status, 204);
      await first.close();
      // What a crash between the last byte landing and the commit leaves: a full staging file, no commit.
      await writeFile(join(dataDir, 'uploads', id), data.subarray(60_000), { flag: 'a' });

      const second = await startServer({ dataDir, port: 0, log: () => undefined });
      try {
        const vol = await Volume.get('crash', { client: new Stowage({ url: second.url, token }) });
        const head = await fetch(`${second.url}/v1/uploads/${id}`, { method: 'HEAD', headers: tusHeaders(token) });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('upload-offset'), String(data.length));
        const commit = head.headers.get('stowage-commit');
        assert.equal(commit, (await vol.refresh()).head);
        assert.deepEqual(await vol.files.read('/c.bin'), data);
        // Asked again: the same commit, no second one.
        const again = await fetch(`${second.url}/v1/uploads/${id}`, { method: 'HEAD', headers: tusHeaders(token) });
        assert.equal(again.headers.get('stowage-commit'), commit);
        assert.equal((await vol.refresh()).head, commit);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('Upload-Metadata parsing', () => {
    assert.deepEqual(parseTusMetadata(`a ${b64('x y')},b,c ${b64('é')}`), { a: 'x y', b: null, c: 'é' });
    assert.deepEqual(parseTusMetadata(undefined), {});
    assert.throws(() => parseTusMetadata('a b c'), /pairs/);
    assert.throws(() => parseTusMetadata(`a ${Buffer.from([0xff, 0xfe]).toString('base64')}`), /UTF-8/);
  });
});

describe('vol.upload', () => {
  test('escapeReason keeps links inside the tree and neutralises the rest', () => {
    assert.equal(escapeReason('a/link', '../b'), undefined);
    assert.equal(escapeReason('link', 'sub/file'), undefined);
    assert.equal(escapeReason('a/b/link', '../../c'), undefined);
    assert.match(escapeReason('link', '../outside') ?? '', /outside/);
    assert.match(escapeReason('a/link', '../../x') ?? '', /outside/);
    assert.match(escapeReason('a/link', 'b/../../../x') ?? '', /outside/);
    assert.match(escapeReason('link', '/etc/passwd') ?? '', /absolute/);
    assert.match(escapeReason('link', '') ?? '', /empty/);
    // The server refuses ".." after a name (the name may be a link to the top): skipped, not a failed upload.
    assert.match(escapeReason('link', 'sub/../README') ?? '', /after a name/);
    assert.equal(escapeReason('a/b/link', './.././c'), undefined);
  });

  test('symlinks are resolved for real: chains, links through links to outside, loops; only those landing inside are stored', async () => {
    const vol = await volume();
    const outside = join(work, fresh('outside'));
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret'), 'secret');
    const root = join(work, fresh('real'));
    await mkdir(join(root, 'a'), { recursive: true });
    await writeFile(join(root, 'a', 'file'), 'inside');
    // Lexically inside, but "out" is a link to a directory outside: "via" lands outside through it.
    await symlink(outside, join(root, 'out'));
    await symlink('../out/secret', join(root, 'a', 'via'));
    // A chain: hop1 -> hop2 -> (absolute) outside file; hop1's own text looks harmless.
    await symlink('hop2', join(root, 'hop1'));
    await symlink(join(outside, 'secret'), join(root, 'hop2'));
    // A chain that stays inside: chain1 -> chain2 -> a/file.
    await symlink('chain2', join(root, 'chain1'));
    await symlink('a/file', join(root, 'chain2'));
    // A link up through a directory link: "a/up" is "../out/.." which is the parent of outside.
    await symlink('../out/..', join(root, 'a', 'up'));
    // Dangling inside (allowed), dangling through the outside link (refused), and a loop.
    await symlink('a/not-yet', join(root, 'dangling'));
    await symlink('out/not-there', join(root, 'dangling-out'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));

    const r = await vol.upload(root, '/t');
    const skipped = new Map(r.skipped.map((s) => [s.path, s.reason]));
    assert.deepEqual([...skipped.keys()].sort(), [
      'a/up',
      'a/via',
      'dangling-out',
      'hop1',
      'hop2',
      'loop1',
      'loop2',
      'out',
    ]);
    assert.match(skipped.get('a/via')!, /resolves outside the uploaded directory/);
    assert.match(skipped.get('hop1')!, /resolves outside/);
    assert.match(skipped.get('loop1')!, /loop/);
    const links = (await vol.files.list('/t', { recursive: true }))
      .filter((e) => e.type === 'symlink')
      .map((e) => e.path)
      .sort();
    assert.deepEqual(links, ['/t/chain1', '/t/chain2', '/t/dangling']);
  });

  test('a local tree deeper than PATH_MAX uploads with its 4,000-byte paths; a file put to a 4,000-byte path reads back', async (t) => {
    const vol = await volume();
    const top = join(work, fresh('deep'), 'l'.repeat(150));
    await mkdir(top, { recursive: true });
    t.after(() => execFileSync('rm', ['-rf', join(top, '..')]));
    // 19 directories of 200 bytes and a 190-byte file: the relative path is 3,999 bytes, the absolute one over 4,096.
    const rel = `${Array.from({ length: 19 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`).join('/')}/${'f'.repeat(190)}`;
    assert.ok(Buffer.byteLength(join(top, rel)) > 4096);
    // Made relative to `top` (as a program working inside the tree would), which no absolute path can reach.
    execFileSync('bash', [
      '-c',
      'cd "$1" && mkdir -p "$(dirname "$2")" && printf deep > "$2" && ln -s "$(basename "$2")" "$(dirname "$2")/link" && printf top > top.txt',
      'x',
      top,
      rel,
    ]);

    const r = await vol.upload(top, '/u');
    assert.deepEqual(r.skipped, []);
    assert.equal(r.files, 2);
    assert.equal(r.symlinks, 1);
    assert.equal((await vol.files.read(`/u/${rel}`)).toString(), 'deep');
    assert.equal((await vol.files.stat(`/u/${rel.slice(0, rel.lastIndexOf('/'))}/link`)).target, 'f'.repeat(190));

    const local = join(work, fresh('small'));
    await writeFile(local, 'put far');
    const remote = `/p/${rel}`;
    ok(await cli(['put', local, `${vol.name}:${remote}`]));
    assert.equal(ok(await cli(['cat', `${vol.name}:${remote}`])), 'put far');
  });

  test('a directory is one commit with its files, modes, empty dirs and inner symlinks; escaping symlinks are skipped and reported', async () => {
    const vol = await volume();
    const root = join(work, fresh('tree'));
    await mkdir(join(root, 'src', 'deep'), { recursive: true });
    await mkdir(join(root, 'empty'));
    await writeFile(join(root, 'README'), 'read me');
    await writeFile(join(root, 'src', 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(root, 'src', 'run.sh'), 0o755);
    await writeFile(join(root, 'src', 'deep', 'secret.key'), pattern(50_000, 3));
    await chmod(join(root, 'src', 'deep', 'secret.key'), 0o600);
    await chmod(join(root, 'src', 'deep'), 0o700);
    await symlink('../README', join(root, 'src', 'readme-link'));
    await symlink('deep/secret.key', join(root, 'src', 'key-link'));
    await symlink('/etc/passwd', join(root, 'abs-link'));
    await symlink('../../outside', join(root, 'src', 'escape-link'));
    await symlink(join(root, 'README'), join(root, 'abs-inside'));
    const before = (await vol.history()).commits.length;

    const r = await vol.upload(root, '/proj');
    assert.equal(r.kind, 'directory');
    assert.equal(r.files, 3);
    assert.equal(r.symlinks, 2);
    assert.equal(r.bytes, 7 + 18 + 50_000);
    assert.deepEqual(r.skipped.map((s) => s.path).sort(), ['abs-inside', 'abs-link', 'src/escape-link']);
    assert.ok(r.skipped.every((s) => s.target !== undefined && s.reason.length > 0));
    assert.equal((await vol.history()).commits.length, before + 1);
    assert.equal(vol.info.head, r.commit);

    const entries = new Map((await vol.files.list('/proj', { recursive: true })).map((e) => [e.path, e]));
    assert.deepEqual([...entries.keys()].sort(), [
      '/proj/README',
      '/proj/empty',
      '/proj/src',
      '/proj/src/deep',
      '/proj/src/deep/secret.key',
      '/proj/src/key-link',
      '/proj/src/readme-link',
      '/proj/src/run.sh',
    ]);
    assert.equal(entries.get('/proj/src/run.sh')!.mode, 0o755);
    assert.equal(entries.get('/proj/src/deep/secret.key')!.mode, 0o600);
    assert.equal(entries.get('/proj/src/deep')!.mode, 0o700);
    assert.equal(entries.get('/proj/empty')!.type, 'dir');
    assert.equal(entries.get('/proj/src/readme-link')!.type, 'symlink');
    assert.equal(entries.get('/proj/src/readme-link')!.target, '../README');
    assert.deepEqual(await vol.files.read('/proj/src/deep/secret.key'), pattern(50_000, 3));

    // Again, unchanged: no chunk bytes travel.
    const again = await vol.upload(root, '/proj');
    assert.equal(again.sentBytes, 0);
  });

  test('a directory with more entries than one commit holds is uploaded in several whole commits', async () => {
    const vol = await volume();
    const root = join(work, fresh('many'));
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    await chmod(join(root, 'a'), 0o700);
    for (let i = 0; i < 23; i++) await writeFile(join(root, i % 2 ? 'a' : join('a', 'b'), `f${i}`), `file ${i}`);
    await symlink('f1', join(root, 'a', 'link'));
    const before = (await vol.history()).commits.length;
    // 5 changes (2 mkdir, 2 setattr, 1 symlink) + 23 files, 10 per commit: 1 + 3 commits.
    const r = await vol.upload(root, '/many', { changesPerCommit: 10 });
    assert.equal(r.commits, 4);
    assert.equal((await vol.history()).commits.length, before + 4);
    assert.equal(vol.info.head, r.commit);
    assert.equal(r.files, 23);
    const entries = new Map((await vol.files.list('/many', { recursive: true })).map((e) => [e.path, e]));
    assert.equal([...entries.values()].filter((e) => e.type === 'file').length, 23);
    assert.equal(entries.get('/many/a')!.mode, 0o700);
    assert.equal(entries.get('/many/a/link')!.target, 'f1');
    assert.equal((await vol.files.read('/many/a/b/f22')).toString(), 'file 22');
    // writeMany is one commit: over the bound it says so before hashing or sending anything.
    const tooMany = Array.from({ length: 100_001 }, (_, i) => ({ path: `/x/${i}`, data: '' }));
    await assert.rejects(
      vol.files.writeMany(tooMany),
      (e: Error & { code?: string }) => e.code === 'PayloadTooLarge' && /at most 100000 changes/.test(e.message),
    );
    await assert.rejects(vol.upload(root, '/many', { changesPerCommit: 0 }), /changesPerCommit/);
  });

  test('a stream is written as it arrives; small files use the chunk protocol, resumable ones tus', async () => {
    const vol = await volume();
    const data = pattern(3 * MiB + 17, 11);
    const s = await vol.upload(Readable.from([data.subarray(0, MiB), data.subarray(MiB)]), '/in/stream.bin', {
      mode: 0o600,
    });
    assert.equal(s.kind, 'stream');
    assert.equal(s.bytes, data.length);
    assert.deepEqual(await vol.files.read('/in/stream.bin'), data);
    assert.equal((await vol.files.stat('/in/stream.bin')).mode, 0o600);

    const local = join(work, fresh('f'));
    await writeFile(local, data);
    const small = await vol.upload(local, '/in/small.bin');
    assert.equal(small.resumable, false);
    const stateDir = join(work, fresh('state'));
    const tus = await vol.upload(local, '/in/tus.bin', { resumable: true, stateDir });
    assert.equal(tus.resumable, true);
    assert.equal(tus.resumedFrom, 0);
    assert.equal(tus.sentBytes, data.length);
    assert.equal(vol.info.head, tus.commit);
    assert.deepEqual(await vol.files.read('/in/tus.bin'), data);
    // Success forgets the resume state.
    assert.deepEqual(await readdir(join(stateDir, 'uploads')), []);

    // Over the cap: refused at creation, nothing written, resume state forgotten.
    const capped = await volume(fresh(), '1M');
    await assert.rejects(
      capped.upload(local, '/too-big.bin', { resumable: true, stateDir }),
      (e) => isStowageError(e, 'QuotaExceeded') && /capped at 1 MiB/.test(e.message),
    );
    assert.equal(await capped.files.exists('/too-big.bin'), false);
    assert.deepEqual(await readdir(join(stateDir, 'uploads')), []);

    await assert.rejects(
      vol.upload(join(work, 'does-not-exist'), '/x'),
      (e) => isStowageError(e, 'InvalidArgument') && /no such local file/.test(e.message),
    );
    await assert.rejects(vol.upload(Readable.from([data]), undefined), (e) => isStowageError(e, 'InvalidArgument'));
    await assert.rejects(vol.upload(local, '/in/../x'), (e) => isStowageError(e, 'InvalidArgument'));
  });
});

describe('stowage upload', { concurrency: true }, () => {
  test('standard input, a file into a directory target, a directory with --json, and clear errors', async () => {
    const vol = await volume();
    const data = pattern(200_000, 5);
    const out = ok(await cli(['upload', '-', `${vol.name}:/logs/stdin.bin`], {}, data));
    assert.match(out, /^uploaded standard input to \S+:\/logs\/stdin\.bin \(195 KiB/);
    assert.deepEqual(await vol.files.read('/logs/stdin.bin'), data);

    const local = join(work, fresh('file'));
    await writeFile(local, 'hello');
    ok(await cli(['upload', local, `${vol.name}:/docs/`]));
    assert.equal((await vol.files.read(`/docs/${local.split('/').pop()}`)).toString(), 'hello');

    const root = join(work, fresh('dir'));
    await mkdir(join(root, 'a'), { recursive: true });
    await writeFile(join(root, 'a', 'f.txt'), 'f');
    await symlink('/etc/shadow', join(root, 'a', 'bad'));
    const r = await cli(['upload', root, `${vol.name}:/tree`, '--json']);
    const json = JSON.parse(ok(r)) as { kind: string; files: number; skipped: Array<{ path: string; reason: string }> };
    assert.equal(json.kind, 'directory');
    assert.equal(json.files, 1);
    assert.deepEqual(
      json.skipped.map((s) => s.path),
      ['a/bad'],
    );
    assert.match(r.stderr, /skipped a\/bad -> \/etc\/shadow: absolute symlink target/);

    const missing = await cli(['upload', join(work, 'nope'), `${vol.name}:/x`]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^stowage: [^\n]*no such local file[^\n]*\n$/);
    const noName = await cli(['upload', '-', `${vol.name}:/dir/`]);
    assert.equal(noName.status, 2);
    assert.match(noName.stderr, /name the file/);
    const noVol = await cli(['upload', local, `${fresh('nosuch')}:/x`]);
    assert.equal(noVol.status, 3);
    const badRate = await cli(['upload', local, `${vol.name}:/x`, '--resumable', '--limit-rate', 'fast']);
    assert.equal(badRate.status, 2);
    const dirMode = await cli(['upload', root, `${vol.name}:/tree2`, '--mode', '600']);
    assert.equal(dirMode.status, 2);
    assert.match(dirMode.stderr, /--mode applies to a file/);
    const special = await cli(['upload', '/dev/null', `${vol.name}:/null`]);
    assert.equal(special.status, 2);
    assert.match(special.stderr, /neither a regular file nor a directory/);
  });

  /**
   * Starts a rate-limited resumable upload through the binary and SIGKILLs
   * it once the server has staged part of it; returns the staged size.
   */
  async function startAndKill(
    volumeName: string,
    args: string[],
    env: Record<string, string>,
    size: number,
  ): Promise<number> {
    const { child, done } = startCli([...args, '--limit-rate', '16M'], env);
    let seen = 0;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      // Tests run concurrently: only this volume's upload counts.
      for (const name of await stagingFor(volumeName)) {
        seen = (await stat(join(srv.dataDir, 'uploads', name)).catch(() => undefined))?.size ?? 0;
      }
      if (seen >= 2 * MiB) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    const r = await done;
    assert.equal(r.signal, 'SIGKILL', `the upload finished before it was killed: ${r.stdout}${r.stderr}`);
    assert.ok(seen > 0 && seen < size, `staged ${seen} of ${size}`);
    return seen;
  }

  test('a killed resumable upload continues from the server offset when run again, byte-identical', async () => {
    const vol = await volume();
    const size = 40 * MiB;
    const data = pattern(size, 21);
    const local = join(work, fresh('big'));
    await writeFile(local, data);
    const env = { STOWAGE_STATE_DIR: join(work, fresh('state')) };
    const args = ['upload', local, `${vol.name}:/big.bin`, '--resumable', '--json'];
    const staged = await startAndKill(vol.name, args, env, size);
    assert.equal(await vol.files.exists('/big.bin'), false);

    const r = JSON.parse(ok(await cli(args, env))) as {
      resumable: boolean;
      resumedFrom: number;
      sentBytes: number;
      bytes: number;
      commit: string;
    };
    assert.equal(r.resumable, true);
    assert.ok(r.resumedFrom > 0, `resumed from ${r.resumedFrom}`);
    assert.ok(r.resumedFrom >= staged - 0, `resumed from ${r.resumedFrom}, staged ${staged}`);
    assert.equal(r.sentBytes, size - r.resumedFrom);
    assert.ok(r.sentBytes < size);
    const back = await vol.files.read('/big.bin');
    assert.equal(sha256(back), sha256(data));
    assert.deepEqual(await stagingFor(vol.name), []);
  });

  /** Commits held by holdCommit, by "volume:path"; one wrapper of the engine serves them all (tests run concurrently). */
  const holds = new Map<string, { enter(): void; gate: Promise<void> }>();

  /**
   * Holds the server's commit of `path` in `volumeName` until `open()`:
   * `entered` resolves once every byte arrived and the commit started.
   */
  function holdCommit(volumeName: string, path: string): { entered: Promise<void>; open(): void; restore(): void } {
    const engine = srv.engine;
    if (holds.size === 0 && !(engine.writeFile as { held?: true }).held) {
      const real = engine.writeFile;
      const wrapper = async (...args: Parameters<typeof real>) => {
        const hold = holds.get(`${args[1]}:${args[2]}`);
        if (hold) {
          hold.enter();
          await hold.gate;
        }
        return real.apply(engine, args);
      };
      engine.writeFile = Object.assign(wrapper, { held: true as const }) as typeof real;
    }
    let enter!: () => void;
    let open!: () => void;
    const entered = new Promise<void>((r) => {
      enter = r;
    });
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const key = `${volumeName}:${path}`;
    holds.set(key, { enter, gate });
    return {
      entered,
      open,
      restore: () => {
        holds.delete(key);
      },
    };
  }

  /** Runs a resumable upload through the binary and SIGKILLs it once its last byte reached the server (before it reads the answer). */
  async function killAfterLastByte(
    args: string[],
    env: Record<string, string>,
    hold: { entered: Promise<void> },
  ): Promise<void> {
    const { child, done } = startCli(args, env);
    await Promise.race([
      hold.entered,
      done.then((r) => assert.fail(`the upload ended before its commit started: ${r.stdout}${r.stderr}`)),
    ]);
    child.kill('SIGKILL');
    assert.equal((await done).signal, 'SIGKILL');
  }

  test('a resumable upload killed after its last byte: the rerun waits for the commit being made and reports it', async () => {
    const vol = await volume();
    const size = 6 * MiB;
    const local = join(work, fresh('late'));
    await writeFile(local, pattern(size, 41));
    const env = { STOWAGE_STATE_DIR: join(work, fresh('state')) };
    const args = ['upload', local, `${vol.name}:/late.bin`, '--resumable', '--json'];
    const hold = holdCommit(vol.name, '/late.bin');
    try {
      await killAfterLastByte(args, env, hold);
      const rerun = startCli(args, env);
      // The rerun asks while the commit is still being made; let it land a moment later.
      await new Promise((r) => setTimeout(r, 300));
      hold.open();
      const r = JSON.parse(ok(await rerun.done)) as {
        commit: string;
        sentBytes: number;
        resumedFrom: number;
        bytes: number;
      };
      assert.equal(r.sentBytes, 0);
      assert.equal(r.resumedFrom, size);
      const head = (await vol.refresh()).head;
      assert.equal(r.commit, head);
      assert.equal(sha256(await vol.files.read('/late.bin')), sha256(pattern(size, 41)));
      assert.deepEqual(await readdir(join(env.STOWAGE_STATE_DIR, 'uploads')), []);
    } finally {
      hold.open();
      hold.restore();
    }
  });

  test('a resumable upload killed after its last byte: a rerun after the commit landed reports that commit and sends nothing', async () => {
    const vol = await volume();
    const size = 6 * MiB;
    const local = join(work, fresh('landed'));
    await writeFile(local, pattern(size, 42));
    const env = { STOWAGE_STATE_DIR: join(work, fresh('state')) };
    const args = ['upload', local, `${vol.name}:/landed.bin`, '--resumable', '--json'];
    const hold = holdCommit(vol.name, '/landed.bin');
    try {
      await killAfterLastByte(args, env, hold);
      hold.open();
      const deadline = Date.now() + 10_000;
      while (!(await vol.files.exists('/landed.bin')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      const landed = (await vol.refresh()).head;
      // The killed client left its resume state: the rerun resumes, finds the upload finished, and names its commit.
      assert.equal((await readdir(join(env.STOWAGE_STATE_DIR, 'uploads'))).length, 1);
      const r = JSON.parse(ok(await cli(args, env))) as { commit: string; sentBytes: number };
      assert.equal(r.commit, landed);
      assert.equal(r.sentBytes, 0);
      assert.equal((await vol.refresh()).head, landed, 'no second commit');
      assert.deepEqual(await stagingFor(vol.name), []);
    } finally {
      hold.open();
      hold.restore();
    }
  });

  test('resuming with different content (same size and mtime) is refused and nothing is committed', async () => {
    const vol = await volume();
    const size = 40 * MiB;
    const local = join(work, fresh('changing'));
    await writeFile(local, pattern(size, 31));
    // Whole seconds, so restoring the time later is exact.
    const mtime = 1_700_000_000;
    await utimes(local, mtime, mtime);
    const env = { STOWAGE_STATE_DIR: join(work, fresh('state')) };
    const args = ['upload', local, `${vol.name}:/c.bin`, '--resumable', '--json'];
    await startAndKill(vol.name, args, env, size);

    // Same size, same mtime (so the same fingerprint), different bytes.
    await writeFile(local, pattern(size, 32));
    await utimes(local, mtime, mtime);
    const before = (await vol.refresh()).head;
    const refused = await cli(args, env);
    assert.equal(refused.status, 2, refused.stderr + refused.stdout);
    assert.match(
      refused.stderr,
      /^stowage: [^\n]*changed since its upload started[^\n]*SHA-256[^\n]*run the upload again[^\n]*\n$/,
    );
    assert.equal((await vol.refresh()).head, before);
    assert.equal(await vol.files.exists('/c.bin'), false);
    assert.deepEqual(await readdir(join(env.STOWAGE_STATE_DIR, 'uploads')), []);

    // Run again: a fresh upload of the current content succeeds.
    ok(await cli(args, env));
    assert.equal(sha256(await vol.files.read('/c.bin')), sha256(pattern(size, 32)));
  });
});
