/**
 * @module test/downloads.test
 * End-to-end tests of downloads against a real server over loopback: the
 * content endpoint (ranges, ETag), directory downloads (byte-identical,
 * modes, symlinks, confinement), tar and tar.gz archives parsed back with
 * tar-stream, signed file URLs fetched with fetch and with curl (expiry,
 * tampering, pinning, revocation), other tenants, and the real CLI binary.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extract, pack as tarPack } from 'tar-stream';
import { Stowage, Volume } from '@stowage/sdk';
import { LongPaths } from '@stowage/sdk/client/long-paths.js';
import { CLI_MAIN, cliEnv, pattern } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let client: Stowage;
let work: string;
let seq = 0;
const fresh = (prefix = 'd'): string => `${prefix}-${process.pid}-${++seq}`;

function api(path: string, init: RequestInit = {}, token = srv.token): Promise<Response> {
  return fetch(`${srv.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) },
  });
}

/** A volume holding a small tree: files with modes, an empty dir, a nested dir and a symlink. */
async function seeded(): Promise<{ vol: Volume; files: Record<string, { data: Buffer; mode: number }> }> {
  const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
  const files: Record<string, { data: Buffer; mode: number }> = {
    '/tree/a.txt': { data: Buffer.from('alpha\n'), mode: 0o644 },
    '/tree/run.sh': { data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
    '/tree/sub/deep/b.bin': { data: pattern(300_000, 7), mode: 0o600 },
    '/tree/sub/empty.txt': { data: Buffer.alloc(0), mode: 0o644 },
  };
  await vol.files.writeMany(
    Object.entries(files).map(([path, f]) => ({ path, data: f.data, mode: f.mode })),
    { createParents: true },
  );
  await vol.commitChanges([
    { op: 'mkdir', path: '/tree/void', mode: 0o750 },
    { op: 'symlink', path: '/tree/link', target: 'sub/deep/b.bin' },
  ]);
  return { vol, files };
}

/** Parses a tar (or tar.gz) back into entries. */
async function untar(
  bytes: Buffer,
  gz: boolean,
): Promise<Map<string, { type: string; mode: number; data: Buffer; linkname: string | null | undefined }>> {
  const out = new Map<string, { type: string; mode: number; data: Buffer; linkname: string | null | undefined }>();
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const parts: Buffer[] = [];
      for await (const d of entry) parts.push(d as Buffer);
      out.set(entry.header.name, {
        type: entry.header.type,
        mode: entry.header.mode,
        data: Buffer.concat(parts),
        linkname: entry.header.linkname,
      });
    }
  })();
  const src = Readable.from([bytes]);
  (gz ? src.pipe(createGunzip()) : src).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (status) =>
      resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

function cli(args: string[]): ReturnType<typeof run> {
  return run(process.execPath, [CLI_MAIN, ...args], cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token }));
}

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
  work = await mkdtemp(join(tmpdir(), 'stowage-dl-'));
});

after(async () => {
  await srv?.close();
  await rm(work, { recursive: true, force: true });
});

describe('content endpoint', () => {
  test('streams a whole file with Content-Length and a content-addressed ETag', async () => {
    const { vol, files } = await seeded();
    const res = await api(`/v1/volumes/${vol.name}/content?path=/tree/sub/deep/b.bin`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), '300000');
    const etag = res.headers.get('etag');
    assert.match(etag ?? '', /^"[0-9a-f]{32}"$/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(files['/tree/sub/deep/b.bin']!.data));
    // Equal bytes keep their ETag across commits; a matching If-None-Match is a 304.
    await vol.files.write('/other.txt', 'x');
    const again = await api(`/v1/volumes/${vol.name}/content?path=/tree/sub/deep/b.bin`, {
      headers: { 'if-none-match': etag! },
    });
    assert.equal(again.status, 304);
  });

  test('serves one range with 206 and Content-Range, and 416 past the end', async () => {
    const { vol, files } = await seeded();
    const data = files['/tree/sub/deep/b.bin']!.data;
    const res = await api(`/v1/volumes/${vol.name}/content?path=/tree/sub/deep/b.bin`, {
      headers: { range: 'bytes=1000-1999' },
    });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 1000-1999/300000');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(1000, 2000)));
    const tail = await api(`/v1/volumes/${vol.name}/content?path=/tree/sub/deep/b.bin`, {
      headers: { range: 'bytes=-10' },
    });
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(data.length - 10)));
    const past = await api(`/v1/volumes/${vol.name}/content?path=/tree/sub/deep/b.bin`, {
      headers: { range: 'bytes=300000-300010' },
    });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */300000');
  });

  test('refuses directories, hostile paths and other tenants', async () => {
    const { vol } = await seeded();
    assert.equal((await api(`/v1/volumes/${vol.name}/content?path=/tree`)).status, 400);
    assert.equal((await api(`/v1/volumes/${vol.name}/content?path=/tree/../etc/passwd`)).status, 400);
    assert.equal((await api(`/v1/volumes/${vol.name}/content?path=tree/a.txt`)).status, 400);
    assert.equal((await api(`/v1/volumes/${vol.name}/content?path=/nope`)).status, 404);
    const { secret } = await srv.engine.createTenant(fresh('tenant'));
    const res = await api(`/v1/volumes/${vol.name}/content?path=/tree/a.txt`, {}, secret);
    assert.equal(res.status, 404);
    assert.equal((await api(`/v1/volumes/${vol.name}/archive?path=/tree`, {}, secret)).status, 404);
    assert.equal(
      (
        await api(
          `/v1/volumes/${vol.name}/urls`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ path: '/tree/a.txt' }),
          },
          secret,
        )
      ).status,
      404,
    );
  });

  test('the SDK reads a range with files.read and files.readStream', async () => {
    const { vol, files } = await seeded();
    const data = files['/tree/sub/deep/b.bin']!.data;
    assert.ok(
      (await vol.files.read('/tree/sub/deep/b.bin', { range: { start: 5, end: 204_999 } })).equals(
        data.subarray(5, 205_000),
      ),
    );
    const parts: Buffer[] = [];
    for await (const d of vol.files.readStream('/tree/sub/deep/b.bin', { range: { start: 299_990, end: 299_999 } }))
      parts.push(d as Buffer);
    assert.ok(Buffer.concat(parts).equals(data.subarray(299_990)));
  });
});

describe('SDK downloads', () => {
  test('a file lands byte-identical with its mode, through a temp file', async () => {
    const { vol, files } = await seeded();
    const dest = join(work, fresh('file'));
    const r = await vol.download('/tree/run.sh', dest);
    assert.equal(r.kind, 'file');
    assert.ok((await readFile(dest)).equals(files['/tree/run.sh']!.data));
    assert.equal((await stat(dest)).mode & 0o777, 0o755);
    // Into an existing directory, the file keeps its name; no temp files are left behind.
    const dir = join(work, fresh('into'));
    await mkdir(dir);
    await vol.download('/tree/a.txt', dir);
    assert.deepEqual(await readdir(dir), ['a.txt']);
  });

  test('a directory round trip is byte-identical with modes, empty dirs and symlinks', async () => {
    const { vol, files } = await seeded();
    const dest = join(work, fresh('tree'));
    const r = await vol.download('/tree', dest);
    assert.equal(r.kind, 'dir');
    assert.equal(r.files, 4);
    assert.deepEqual(r.refused, []);
    for (const [path, f] of Object.entries(files)) {
      const local = join(dest, path.slice('/tree/'.length));
      assert.ok((await readFile(local)).equals(f.data), path);
      assert.equal((await stat(local)).mode & 0o777, f.mode, path);
    }
    assert.equal((await stat(join(dest, 'void'))).mode & 0o777, 0o750);
    assert.deepEqual(await readdir(join(dest, 'void')), []);
    assert.ok((await lstat(join(dest, 'link'))).isSymbolicLink());
    assert.equal(await readlink(join(dest, 'link')), 'sub/deep/b.bin');
  });

  test('a 4,000-byte volume path downloads under a local directory even when the whole local path passes PATH_MAX', async (t) => {
    const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
    // 19 directories of 200 bytes and a 190-byte file name: 4,009 bytes, each segment under NAME_MAX.
    const segs = Array.from({ length: 19 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`);
    const deepDir = `/${segs.join('/')}`;
    const deepFile = `${deepDir}/${'f'.repeat(190)}`;
    assert.ok(Buffer.byteLength(deepFile) >= 4000 && Buffer.byteLength(deepFile) <= 4096);
    const big = pattern(1_500_000, 61);
    await vol.files.writeMany(
      [
        { path: deepFile, data: 'deep\n', mode: 0o640 },
        { path: `${deepDir}/big.bin`, data: big },
        { path: '/shallow.txt', data: 'shallow' },
      ],
      { createParents: true },
    );
    await vol.commitChanges([{ op: 'symlink', path: `${deepDir}/link`, target: 'big.bin' }]);
    // A local directory of 150 bytes: the deepest local path is over 4,096 bytes.
    const top = join(work, fresh('long'));
    const dest = join(top, 'l'.repeat(150));
    assert.ok(Buffer.byteLength(dest + deepFile) > 4096);
    // fs.rm cannot remove a tree deeper than PATH_MAX; GNU rm walks it relative to open directories.
    t.after(() => execFileSync('rm', ['-rf', top]));
    const r = await vol.download('/', dest);
    assert.deepEqual(r.refused, []);
    assert.equal(r.files, 3);
    const lp = new LongPaths();
    try {
      assert.equal(await readFile(lp.short(dest + deepFile), 'utf8'), 'deep\n');
      assert.equal((await stat(lp.short(dest + deepFile))).mode & 0o777, 0o640);
      assert.ok((await readFile(lp.short(`${dest}${deepDir}/big.bin`))).equals(big));
      assert.equal(await readlink(lp.short(`${dest}${deepDir}/link`)), 'big.bin');
    } finally {
      lp.close();
    }
    assert.equal(await readFile(join(dest, 'shallow.txt'), 'utf8'), 'shallow');
    // No directory handle is left open by the download.
    const open = [];
    for (const fd of await readdir('/proc/self/fd'))
      if ((await readlink(join('/proc/self/fd', fd)).catch(() => '')).startsWith(dest)) open.push(fd);
    assert.deepEqual(open, []);
  });

  test('a later download never writes through a symlink an earlier one made', async () => {
    const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
    const sandbox = join(work, fresh('sandbox'));
    const outside = join(sandbox, 'outside');
    await mkdir(outside, { recursive: true });
    await vol.commitChanges([
      { op: 'mkdir', path: '/d' },
      { op: 'symlink', path: '/d/link', target: '../outside' },
    ]);
    const dest = join(sandbox, 'dest');
    await vol.download('/d', dest);
    assert.equal(await readlink(join(dest, 'link')), '../outside');
    // The volume now has a real directory where the symlink was; the local symlink is still there.
    await vol.files.remove('/d/link');
    await vol.files.write('/d/link/escape.txt', 'pwned', { createParents: true });
    await vol.files.write('/d/ok.txt', 'fine');
    const r = await vol.download('/d', dest);
    assert.deepEqual(await readdir(outside), []);
    assert.equal(r.refused.length, 2);
    assert.ok(r.refused.some((x) => x.path === '/d/link/escape.txt' && /symlink/.test(x.reason)));
    assert.equal(await readFile(join(dest, 'ok.txt'), 'utf8'), 'fine');
  });

  test('an archive streams to a local file', async () => {
    const { vol, files } = await seeded();
    const out = join(work, `${fresh('arch')}.tar`);
    const r = await vol.download('/tree', out, { archive: 'tar' });
    assert.equal(r.kind, 'archive');
    const entries = await untar(await readFile(out), false);
    assert.ok(entries.get('a.txt')!.data.equals(files['/tree/a.txt']!.data));
  });
});

describe('archives', () => {
  for (const format of ['tar', 'tar.gz'] as const) {
    test(`a ${format} of a directory parses back to its tree`, async () => {
      const { vol, files } = await seeded();
      const res = await api(`/v1/volumes/${vol.name}/archive?path=/tree&format=${format}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), format === 'tar' ? 'application/x-tar' : 'application/gzip');
      const entries = await untar(Buffer.from(await res.arrayBuffer()), format === 'tar.gz');
      assert.deepEqual([...entries.keys()].sort(), [
        'a.txt',
        'link',
        'run.sh',
        'sub/',
        'sub/deep/',
        'sub/deep/b.bin',
        'sub/empty.txt',
        'void/',
      ]);
      for (const [path, f] of Object.entries(files)) {
        const e = entries.get(path.slice('/tree/'.length))!;
        assert.equal(e.type, 'file');
        assert.equal(e.mode, f.mode, path);
        assert.ok(e.data.equals(f.data), path);
      }
      assert.equal(entries.get('void/')!.type, 'directory');
      assert.equal(entries.get('void/')!.mode, 0o750);
      assert.equal(entries.get('link')!.type, 'symlink');
      assert.equal(entries.get('link')!.linkname, 'sub/deep/b.bin');
    });
  }

  test('the whole volume archives from "/", and an old commit archives as it was', async () => {
    const { vol } = await seeded();
    const before = vol.info.head;
    await vol.files.write('/tree/new.txt', 'new');
    const now = await untar(
      Buffer.from(await (await api(`/v1/volumes/${vol.name}/archive?format=tar`)).arrayBuffer()),
      false,
    );
    assert.ok(now.has('tree/new.txt'));
    const old = await untar(
      Buffer.from(
        await (await api(`/v1/volumes/${vol.name}/archive?format=tar&path=/tree&commit=${before}`)).arrayBuffer(),
      ),
      false,
    );
    assert.ok(!old.has('new.txt'));
    assert.ok(old.has('a.txt'));
  });

  test('a client that goes away mid-archive leaves the server serving', async () => {
    const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
    await vol.files.writeMany(
      Array.from({ length: 40 }, (_, i) => ({ path: `/big/f${i}.bin`, data: pattern(256 * 1024, i + 1) })),
      { createParents: true },
    );
    const res = await api(`/v1/volumes/${vol.name}/archive?path=/big&format=tar`);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    const again = await api(`/v1/volumes/${vol.name}/archive?path=/big&format=tar`);
    const entries = await untar(Buffer.from(await again.arrayBuffer()), false);
    assert.equal(entries.size, 40);
    assert.ok(entries.get('f39.bin')!.data.equals(pattern(256 * 1024, 40)));
  });

  /** File descriptors this process (the server's) holds open on its blob directory. */
  async function blobHandles(): Promise<string[]> {
    const blobs = join(srv.dataDir, 'blobs');
    const out: string[] = [];
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(join('/proc/self/fd', fd)).catch(() => '');
      if (target.startsWith(blobs)) out.push(target);
    }
    return out;
  }

  test('a client that aborts an archive download makes the server close its blob handles at once', async () => {
    const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
    // Large chunked files (a handle per chunk read) and small packed ones (read ahead) alike.
    await vol.files.writeMany(
      [
        ...Array.from({ length: 3 }, (_, i) => ({ path: `/x/big${i}.bin`, data: pattern(20 * 1024 * 1024, 50 + i) })),
        ...Array.from({ length: 60 }, (_, i) => ({ path: `/x/small/f${i}.bin`, data: pattern(64 * 1024, 100 + i) })),
      ],
      { createParents: true },
    );
    assert.deepEqual(await blobHandles(), [], 'no handle before');
    for (const format of ['tar', 'tar.gz']) {
      // A raw socket, so the abort is what a killed client does: the connection closes mid-stream.
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        const req = httpGet(
          `${srv.url}/v1/volumes/${vol.name}/archive?path=/x&format=${format}`,
          { headers: { authorization: `Bearer ${srv.token}` } },
          (res) => {
            res.on('data', (d: Buffer) => {
              received += d.length;
              if (received >= 2 * 1024 * 1024) {
                req.destroy();
                resolve();
              }
            });
            res.on('error', () => undefined);
          },
        );
        req.on('error', (e) => (received >= 2 * 1024 * 1024 ? undefined : reject(e)));
      });
      const deadline = Date.now() + 500;
      let open = await blobHandles();
      while (open.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        open = await blobHandles();
      }
      assert.deepEqual(open, [], `${format}: blob handles still open 500 ms after the client went away`);
      // And none is opened again: the server stopped reading.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await blobHandles(), [], `${format}: the server kept reading blobs`);
    }
  });

  test('hostile archive paths and formats are 400, files are 400, missing is 404', async () => {
    const { vol } = await seeded();
    for (const path of ['/tree/..', '/../etc', '../etc', 'tree', '/tree//sub', '/tree/./sub']) {
      const res = await api(`/v1/volumes/${vol.name}/archive?path=${encodeURIComponent(path)}`);
      assert.equal(res.status, 400, path);
    }
    assert.equal((await api(`/v1/volumes/${vol.name}/archive?path=/tree&format=zip`)).status, 400);
    assert.equal((await api(`/v1/volumes/${vol.name}/archive?path=/tree/a.txt`)).status, 400);
    assert.equal((await api(`/v1/volumes/${vol.name}/archive?path=/none`)).status, 404);
  });
});

describe('special mode bits', () => {
  /** A volume holding a setuid+setgid file (0o6755) in a sticky+setgid directory (0o3777), as a hostile writer would leave them. */
  async function suid(): Promise<Volume> {
    const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
    await vol.files.write('/s/t/suid', '#!/bin/sh\nid\n', { mode: 0o6755 });
    await vol.commitChanges([{ op: 'setattr', path: '/s/t', mode: 0o3777 }]);
    assert.equal((await vol.files.stat('/s/t/suid')).mode & 0o7777, 0o6755, 'the volume holds the bits');
    assert.equal((await vol.files.stat('/s/t')).mode & 0o7777, 0o3777, 'the volume holds the bits');
    return vol;
  }

  test('file, directory and archive downloads drop setuid, setgid and sticky bits by default', async () => {
    const vol = await suid();
    const file = join(work, fresh('suid'));
    await vol.download('/s/t/suid', file);
    assert.equal((await stat(file)).mode & 0o7777, 0o755);
    const dir = join(work, fresh('suid-dir'));
    await vol.download('/s', dir);
    assert.equal((await stat(join(dir, 't', 'suid'))).mode & 0o7777, 0o755);
    assert.equal((await stat(join(dir, 't'))).mode & 0o7777, 0o777);
    for (const gz of [false, true]) {
      const res = await api(`/v1/volumes/${vol.name}/archive?path=/&format=${gz ? 'tar.gz' : 'tar'}`);
      const entries = await untar(Buffer.from(await res.arrayBuffer()), gz);
      assert.equal(entries.get('s/t/suid')!.mode, 0o755);
      assert.equal(entries.get('s/t/')!.mode, 0o777);
    }
    const cliDir = join(work, fresh('cli-suid'));
    const r = await cli(['download', `${vol.name}:/s`, cliDir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await stat(join(cliDir, 't', 'suid'))).mode & 0o7777, 0o755);
  });

  test('--preserve-mode and preserveMode keep them', async () => {
    const vol = await suid();
    const dir = join(work, fresh('keep-dir'));
    await vol.download('/s', dir, { preserveMode: true });
    assert.equal((await stat(join(dir, 't', 'suid'))).mode & 0o7777, 0o6755);
    assert.equal((await stat(join(dir, 't'))).mode & 0o7777, 0o3777);
    const res = await api(`/v1/volumes/${vol.name}/archive?path=/s&format=tar&preserveMode=true`);
    assert.equal((await untar(Buffer.from(await res.arrayBuffer()), false)).get('t/suid')!.mode, 0o6755);
    const plain = join(work, fresh('cli-plain'));
    assert.equal((await cli(['download', `${vol.name}:/s/t/suid`, plain])).status, 0);
    assert.equal((await stat(plain)).mode & 0o7777, 0o755);
    const kept = join(work, fresh('cli-keep'));
    const r = await cli(['download', `${vol.name}:/s/t/suid`, kept, '--preserve-mode']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await stat(kept)).mode & 0o7777, 0o6755);
  });

  test('the SDK masks the modes a hostile server sends in a directory archive', async () => {
    // A server that lies: it answers stat with a directory and streams entries with setuid/sticky bits whatever was asked.
    const hostile: Server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname.endsWith('/stat')) {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            commit: 'c'.repeat(64),
            entry: { path: '/d', name: 'd', type: 'dir', mode: 0o7777, size: 3, mtime: Date.now() },
          }),
        );
        return;
      }
      const tar = tarPack();
      tar.entry({ name: 'sub/', type: 'directory', mode: 0o7777 });
      tar.entry({ name: 'sub/evil', type: 'file', mode: 0o6777 }, 'abc');
      tar.finalize();
      res.setHeader('content-type', 'application/x-tar');
      (tar as unknown as NodeJS.ReadableStream).pipe(res);
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    try {
      const evilClient = new Stowage({
        url: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`,
        token: 'x',
      });
      const { downloadTo } = await import('@stowage/sdk/client/download.js');
      const dir = join(work, fresh('hostile'));
      await downloadTo({ client: evilClient, name: 'v' }, '/d', dir);
      assert.equal((await stat(join(dir, 'sub', 'evil'))).mode & 0o7777, 0o777);
      assert.equal((await stat(join(dir, 'sub'))).mode & 0o7777, 0o777);
    } finally {
      await new Promise<void>((resolve) => hostile.close(() => resolve()));
    }
  });
});

describe('signed file URLs', () => {
  async function sign(vol: Volume, body: Record<string, unknown>): Promise<Response> {
    return api(`/v1/volumes/${vol.name}/urls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  test('work with plain fetch and with curl, without a token, with the file name', async () => {
    const { vol, files } = await seeded();
    const url = await vol.signedUrl('/tree/sub/deep/b.bin', { expiresIn: 600 });
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') ?? '', /filename="b\.bin"/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '300000');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(files['/tree/sub/deep/b.bin']!.data));
    const out = join(work, fresh('curl'));
    const c = await run('curl', ['-sS', '-f', '-o', out, url]);
    assert.equal(c.status, 0, c.stderr);
    assert.ok((await readFile(out)).equals(files['/tree/sub/deep/b.bin']!.data));
    const ranged = await run('curl', ['-sS', '-f', '-r', '0-9', url]);
    assert.ok(ranged.stdout.equals(files['/tree/sub/deep/b.bin']!.data.subarray(0, 10)));
  });

  test('serve the bytes that existed when signed', async () => {
    const vol = await Volume.get(fresh(), { client, mintIfMissing: true });
    await vol.files.write('/f.txt', 'version one');
    const url = await vol.signedUrl('/f.txt');
    await vol.files.write('/f.txt', 'version two');
    assert.equal(await (await fetch(url)).text(), 'version one');
  });

  test('tampered, foreign-path, expired and revoked URLs are 403 with a JSON error', async () => {
    const { vol } = await seeded();
    const res = await sign(vol, { path: '/tree/a.txt', expiresIn: 1 });
    assert.equal(res.status, 200);
    const { url, expiresAt } = (await res.json()) as { url: string; expiresAt: string };
    assert.ok(Date.parse(expiresAt) > Date.now());
    const u = new URL(url);
    const tampered = new URL(url);
    tampered.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 3600));
    const otherPath = new URL(url.replace('/tree/a.txt', '/tree/run.sh'));
    const badSig = new URL(url);
    badSig.searchParams.set('sig', '0'.repeat(64));
    for (const bad of [tampered, otherPath, badSig]) {
      const r = await fetch(bad);
      assert.equal(r.status, 403, bad.toString());
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'Forbidden');
      assert.match(body.error.message, /signed file URL/);
    }
    const curlTampered = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', tampered.toString()]);
    assert.equal(curlTampered.stdout.toString(), '403');
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await fetch(url);
    assert.equal(expired.status, 403);
    assert.match(((await expired.json()) as { error: { message: string } }).error.message, /expired/);

    // Revoking the signing token kills its links.
    const { token, secret } = await client.createToken({ name: fresh('signer') });
    const viaToken = new Stowage({ url: srv.url, token: secret });
    const link = await (await Volume.get(vol.name, { client: viaToken })).signedUrl('/tree/a.txt');
    assert.equal((await fetch(link)).status, 200);
    await client.revokeToken(token.id);
    assert.equal((await fetch(link)).status, 403);
  });

  test('refuse bad lifetimes, directories and hostile paths', async () => {
    const { vol } = await seeded();
    assert.equal((await sign(vol, { path: '/tree/a.txt', expiresIn: 0 })).status, 400);
    assert.equal((await sign(vol, { path: '/tree/a.txt', expiresIn: 7 * 86_400 + 1 })).status, 400);
    assert.equal((await sign(vol, { path: '/tree' })).status, 400);
    assert.equal((await sign(vol, { path: '/tree/../x' })).status, 400);
    assert.equal((await fetch(`${srv.url}/v1/shared/nothing`)).status, 403);
    assert.equal((await fetch(`${srv.url}/v1/shared/vol_x/a.txt`)).status, 403);
  });
});

describe('CLI', () => {
  test('download of a directory, of an archive to a file and to stdout, and url with curl', async () => {
    const { vol, files } = await seeded();
    const dest = join(work, fresh('cli'));
    const d = await cli(['download', `${vol.name}:/tree`, dest]);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout.toString(), /downloaded .* \(4 files/);
    assert.ok((await readFile(join(dest, 'sub/deep/b.bin'))).equals(files['/tree/sub/deep/b.bin']!.data));

    const tgz = join(work, `${fresh('cli')}.tgz`);
    const a = await cli(['download', `${vol.name}:/tree`, '--archive', tgz]);
    assert.equal(a.status, 0, a.stderr);
    assert.ok((await untar(await readFile(tgz), true)).has('sub/deep/b.bin'));

    const s = await cli(['download', `${vol.name}:/tree`, '--archive', '-']);
    assert.equal(s.status, 0, s.stderr);
    assert.ok((await untar(s.stdout, true)).get('a.txt')!.data.equals(files['/tree/a.txt']!.data));

    const bad = await cli(['download', `${vol.name}:/tree`, '--archive', join(work, 'x.zip')]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /archive format/);

    const u = await cli(['url', `${vol.name}:/tree/a.txt`, '--expires', '10m']);
    assert.equal(u.status, 0, u.stderr);
    const c = await run('curl', ['-sS', '-f', u.stdout.toString().trim()]);
    assert.equal(c.status, 0, c.stderr);
    assert.ok(c.stdout.equals(files['/tree/a.txt']!.data));
    const tooLong = await cli(['url', `${vol.name}:/tree/a.txt`, '--expires', '8d']);
    assert.notEqual(tooLong.status, 0);
  });

  test('download of a file keeps the name, hostile targets fail cleanly', async () => {
    const { vol, files } = await seeded();
    const dir = join(work, fresh('clif'));
    await mkdir(dir);
    const r = await cli(['download', `${vol.name}:/tree/run.sh`, dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok((await readFile(join(dir, 'run.sh'))).equals(files['/tree/run.sh']!.data));
    const hostile = await cli(['download', `${vol.name}:/tree/../../etc`, join(dir, 'x')]);
    assert.notEqual(hostile.status, 0);
    assert.match(hostile.stderr, /"\." or "\.\."/);
    await writeFile(join(dir, 'keep'), 'k');
    const missing = await cli(['download', `${vol.name}:/nope`, join(dir, 'keep')]);
    assert.notEqual(missing.status, 0);
    assert.equal(await readFile(join(dir, 'keep'), 'utf8'), 'k');
  });
});
