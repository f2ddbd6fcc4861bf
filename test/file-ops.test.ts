/**
 * @module test/file-ops.test
 * End-to-end tests of the file operations (paged list, search, replace,
 * edit, watch) through the SDK and the real compiled CLI against a real
 * server over loopback, including hostile input: catastrophic regexes,
 * invalid regexes, huge and binary files, stale edits, ".." paths, and a
 * watch that disconnects and resumes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { Stowage, Volume, type wire } from '@stowage/sdk';
import { cliEnv, spawnCli, type CliResult } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let client: Stowage;
let emptyData: string;
let seq = 0;
const fresh = (): string => `fo-${process.pid}-${++seq}`;

async function vol(files: Record<string, string | Uint8Array> = {}): Promise<Volume> {
  const v = await Volume.create(fresh(), { client });
  const entries = Object.entries(files).map(([path, data]) => ({ path, data }));
  if (entries.length > 0) await v.files.writeMany(entries);
  return v;
}

type Result = CliResult;

function cli(args: string[]): { done: Promise<Result>; child: ChildProcess } {
  return spawnCli(args, { env: cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token, STOWAGE_DATA: emptyData }) });
}

const run = (args: string[]): Promise<Result> => cli(args).done;

function ok(r: Result): string {
  assert.equal(r.status, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r.stdout;
}

/** Raw HTTP for what the SDK refuses to send. */
async function raw(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${srv.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${srv.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
  emptyData = await mkdtemp(join(tmpdir(), 'stowage-fileops-nodata-'));
});

after(async () => {
  await srv?.close();
  if (emptyData) await rm(emptyData, { recursive: true, force: true });
});

describe('list pages', { concurrency: true }, () => {
  test('the API pages with nextCursor; the SDK and `stowage ls` follow it to the end', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 25; i++) files[`/d/f${String(i).padStart(2, '0')}`] = `${i}`;
    const v = await vol(files);
    const page = (await (await raw('GET', `/v1/volumes/${v.name}/list?path=/d&limit=10`)).json()) as wire.ListResponse;
    assert.equal(page.entries.length, 10);
    assert.equal(page.nextCursor, '/d/f09');
    const last = (await (
      await raw('GET', `/v1/volumes/${v.name}/list?path=/d&limit=10&after=/d/f19&commit=${page.commit}`)
    ).json()) as wire.ListResponse;
    assert.deepEqual([last.entries.length, last.nextCursor], [5, null]);
    const all = await v.files.list('/d', { pageSize: 7 });
    assert.deepEqual(
      all.map((e) => e.name),
      Object.keys(files).map((p) => p.slice(3)),
    );
    const bad = await raw('GET', `/v1/volumes/${v.name}/list?path=/d&after=/d/../etc`);
    assert.equal(bad.status, 400);
    const ls = JSON.parse(ok(await run(['ls', `${v.name}:/d`, '--json']))) as wire.FileInfo[];
    assert.equal(ls.length, 25);
  });
});

describe('search', { concurrency: true }, () => {
  test('globs and regexes through the SDK, with line, column and clipped lines', async () => {
    const v = await vol({
      '/src/a.ts': 'const x = 1;\n// TODO fix\n',
      '/src/.env': 'TODO=1',
      '/README.md': `todo ${'y'.repeat(1000)}`,
    });
    const found = await v.files.search('/', { glob: '*.ts' });
    assert.deepEqual(
      found.files.map((f) => f.path),
      ['/src/a.ts'],
    );
    const r = await v.files.search('/', { regex: 'todo', flags: 'i' });
    assert.deepEqual(
      r.matches.map((m) => [m.path, m.line, m.column]),
      [
        ['/README.md', 1, 1],
        ['/src/.env', 1, 1],
        ['/src/a.ts', 2, 4],
      ],
    );
    assert.equal(r.matches[0]!.text.length, 500);
    assert.equal(r.filesScanned, 3);
  });

  test('a catastrophic regex returns within the time bound, as a partial result', async () => {
    const v = await vol({ '/ok.txt': 'aaa', '/evil.txt': `${'a'.repeat(48)}!`, [`/${'a'.repeat(40)}`]: 'x' });
    const t0 = Date.now();
    const r = await v.files.search('/', { regex: '(a+)+$', timeoutMs: 500 });
    const took = Date.now() - t0;
    assert.ok(took < 5000, `took ${took} ms`);
    assert.equal(r.timedOut, true);
    // Globs compile to regexes and can backtrack as badly: the same bound holds.
    const globbed = await v.files.search('/', { glob: `${'*a'.repeat(16)}*b`, timeoutMs: 300 });
    assert.equal(globbed.timedOut, true);
    assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
    // The server is still responsive afterwards.
    assert.equal((await v.files.search('/', { regex: 'aaa' })).matches.length >= 1, true);
  });

  test('an invalid regex, bad flags, an out-of-range limit and ".." paths are 400s', async () => {
    const v = await vol({ '/a.txt': 'a' });
    await assert.rejects(
      v.files.search('/', { regex: '([a-' }),
      (e) => isStowageError(e, 'InvalidArgument') && /invalid regex/.test(e.message),
    );
    await assert.rejects(v.files.search('/', { regex: 'a', flags: 'gy' }), (e) => isStowageError(e, 'InvalidArgument'));
    await assert.rejects(v.files.search('/', { regex: 'a', limit: 1_000_000 }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    for (const path of ['/../etc', '/a/../../b', 'relative']) {
      const res = await raw('POST', `/v1/volumes/${v.name}/search`, { path, regex: 'a' });
      assert.equal(res.status, 400, path);
    }
    const res = await raw('POST', `/v1/volumes/${v.name}/search`, { regex: 'x'.repeat(5000) });
    assert.equal(res.status, 400);
  });

  test('a huge file is read only up to maxBytesPerFile, and binary files are skipped', async () => {
    const big = Buffer.alloc(3 * MiB, 'x');
    big.write('needle', big.length - 10);
    const v = await vol({
      '/big.txt': big,
      '/bin.dat': Buffer.from([110, 101, 101, 100, 108, 101, 0, 0]),
      '/small.txt': 'needle',
    });
    const r = await v.files.search('/', { regex: 'needle', maxBytesPerFile: 1 * MiB });
    assert.deepEqual(
      r.matches.map((m) => m.path),
      ['/small.txt'],
    );
    assert.deepEqual(r.truncatedFiles, ['/big.txt']);
    assert.deepEqual(r.skippedBinary, ['/bin.dat']);
  });
});

describe('replace and edit', { concurrency: true }, () => {
  test('replace changes every selected file in one commit; no match commits nothing', async () => {
    const v = await vol({ '/a.md': 'colour and colour', '/b.md': 'colourful', '/c.txt': 'colour' });
    const head = (await v.refresh()).head;
    const r = await v.files.replace('/', 'colou?r', 'color', { glob: '*.md' });
    assert.deepEqual(r.files, [
      { path: '/a.md', replacements: 2 },
      { path: '/b.md', replacements: 1 },
    ]);
    assert.equal(r.commit!.parent, head, 'one commit on top of the head');
    assert.equal((await v.files.read('/a.md')).toString(), 'color and color');
    assert.equal((await v.files.read('/c.txt')).toString(), 'colour');
    const none = await v.files.replace('/', 'zzz', 'y', { glob: '*.md' });
    assert.equal(none.commit, null);
    await v.files.write('/evil.md', `${'a'.repeat(48)}!`);
    const t0 = Date.now();
    await assert.rejects(
      v.files.replace('/', '(a+)+$', 'x', { glob: '*.md', timeoutMs: 300 }),
      (e) => isStowageError(e, 'InvalidArgument') && /nothing was committed/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  test('edit replaces exactly one occurrence; zero or two fail saying how many', async () => {
    const v = await vol({ '/cfg.toml': 'debug = false\nname = "x"\nname = "x"\n' });
    const r = await v.files.edit('/cfg.toml', 'debug = false', 'debug = true');
    assert.equal((await v.files.read('/cfg.toml')).toString(), 'debug = true\nname = "x"\nname = "x"\n');
    assert.equal(v.info.head, r.commit.id);
    await assert.rejects(
      v.files.edit('/cfg.toml', 'missing', 'x'),
      (e) => isStowageError(e, 'PreconditionFailed') && /does not occur/.test(e.message),
    );
    await assert.rejects(
      v.files.edit('/cfg.toml', 'name = "x"', 'y'),
      (e) => isStowageError(e, 'PreconditionFailed') && /occurs 2 times/.test(e.message),
    );
    const res = await raw('POST', `/v1/volumes/${v.name}/edit`, {
      path: '/../cfg.toml',
      oldString: 'a',
      newString: 'b',
    });
    assert.equal(res.status, 400);
  });

  test('edit with a base is a 409 once another commit changed the file', async () => {
    const v = await vol({ '/f.txt': 'one' });
    const base = (await v.refresh()).head;
    await v.files.write('/f.txt', 'two');
    await assert.rejects(
      v.files.edit('/f.txt', 'two', 'three', { base }),
      (e) => isStowageError(e, 'Conflict') && /changed since you read it/.test(e.message),
    );
    assert.equal((await v.files.read('/f.txt')).toString(), 'two');
  });
});

/** Collects `n` events from a watch, then stops it. */
async function take(it: AsyncGenerator<wire.ChangeEvent>, n: number): Promise<wire.ChangeEvent[]> {
  const out: wire.ChangeEvent[] = [];
  if (n === 0) return out;
  for await (const ev of it) {
    out.push(ev);
    if (out.length >= n) break;
  }
  return out;
}

describe('watch', { concurrency: true }, () => {
  test('streams changes, and a watcher that disconnects resumes from its last commit missing nothing', async () => {
    const v = await vol();
    const ac = new AbortController();
    const first = take(v.files.watch({ signal: ac.signal, since: (await v.refresh()).head }), 1);
    await v.files.write('/a.txt', 'a');
    const [ev] = await first;
    ac.abort();
    assert.deepEqual([ev!.path, ev!.kind, ev!.type], ['/a.txt', 'added', 'file']);
    // Disconnected: two more commits happen.
    await v.files.write('/b.txt', 'b');
    await v.files.remove('/a.txt');
    const resumed = await take(v.files.watch({ since: ev!.commit }), 2);
    assert.deepEqual(
      resumed.map((e) => [e.path, e.kind]),
      [
        ['/b.txt', 'added'],
        ['/a.txt', 'deleted'],
      ],
    );
    assert.ok(resumed[0]!.seq < resumed[1]!.seq);

    // A reconnecting EventSource sends Last-Event-ID instead of `since`.
    const res = await raw('GET', `/v1/volumes/${v.name}/watch`, undefined, {
      'last-event-id': ev!.commit,
      accept: 'text/event-stream',
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/event: change/g) ?? []).length < 2)
      text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    assert.match(text, new RegExp(`event: change\\ndata: .*"/b.txt".*\\nid: ${resumed[0]!.commit}\\n`));
    assert.match(text, /"path":"\/a.txt","kind":"deleted"/);
  });

  test('an unknown or malformed commit is a 404 before any streaming', async () => {
    const v = await vol();
    for (const since of ['c'.repeat(64), '../../x', 'nope']) {
      const res = await raw('GET', `/v1/volumes/${v.name}/watch?since=${encodeURIComponent(since)}`);
      assert.equal(res.status, 404, since);
      assert.equal(((await res.json()) as wire.ErrorBody).error.code, 'NotFound');
    }
    await assert.rejects(take(v.files.watch({ since: 'c'.repeat(64) }), 1), (e) => isStowageError(e, 'NotFound'));
  });
});

/** A TCP proxy to the test server whose connections a test can cut. */
async function cuttableProxy(): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const target = new URL(srv.url);
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(Number(target.port), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const cut = (): void => {
    for (const s of sockets) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut,
    close: () =>
      new Promise((r) => {
        cut();
        server.close(() => r());
      }),
  };
}

describe('watch across failures', { concurrency: true }, () => {
  test('the SDK reconnects after a dropped connection and delivers every change once, in order', async () => {
    const proxy = await cuttableProxy();
    try {
      const v = await vol();
      const viaProxy = await Volume.get(v.name, { client: new Stowage({ url: proxy.url, token: srv.token }) });
      const ac = new AbortController();
      const it = viaProxy.files.watch({ signal: ac.signal, retryDelay: 50, since: (await v.refresh()).head });
      const got: wire.ChangeEvent[] = [];
      const reading = (async () => {
        for await (const ev of it) {
          got.push(ev);
          if (got.length === 3) break;
        }
      })();
      await v.files.write('/1', '1');
      for (const until = Date.now() + 10_000; got.length < 1; ) {
        assert.ok(Date.now() < until, 'no first event');
        await new Promise((r) => setTimeout(r, 20));
      }
      proxy.cut();
      await v.files.write('/2', '2');
      await v.files.writeMany([
        { path: '/3', data: '3' },
        { path: '/4', data: '4' },
      ]);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        reading,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('watch did not resume')), 10_000))),
      ]).finally(() => clearTimeout(timer));
      ac.abort();
      assert.deepEqual(
        got.map((e) => e.path),
        ['/1', '/2', '/3'],
      );
      assert.deepEqual(
        got.map((e) => [e.index, e.count]),
        [
          [0, 1],
          [0, 1],
          [0, 2],
        ],
      );
    } finally {
      await proxy.close();
    }
  });

  test('a watch ends with Unauthenticated once its token is revoked', async () => {
    const v = await vol();
    const { token, secret } = await client.createToken({ name: 'watcher', volume: v.name });
    const watcher = await Volume.get(v.name, { client: new Stowage({ url: srv.url, token: secret }) });
    const ac = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const ev of watcher.files.watch({ signal: ac.signal, since: (await v.refresh()).head }))
        seen.push(ev.path);
    })();
    await v.files.write('/before', '1');
    await client.revokeToken(token.id);
    const t0 = Date.now();
    await assert.rejects(watching, (e) => isStowageError(e, 'Unauthenticated'));
    assert.ok(Date.now() - t0 < 6000);
    assert.ok(seen.every((p) => p === '/before'));
  });

  test('the server stops polling when the watcher goes away', async () => {
    const v = await vol();
    const engine = srv.engine as unknown as { changesSince: (...args: unknown[]) => Promise<unknown> };
    const original = engine.changesSince;
    let calls = 0;
    engine.changesSince = function (this: unknown, ...args: unknown[]) {
      if (args[1] === v.name) calls++;
      return original.apply(this, args);
    };
    try {
      const ac = new AbortController();
      const res = await fetch(`${srv.url}/v1/volumes/${v.name}/watch`, {
        headers: { authorization: `Bearer ${srv.token}` },
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 600));
      assert.ok(calls >= 2, `polled ${calls} times`);
      ac.abort();
      await new Promise((r) => setTimeout(r, 400));
      const settled = calls;
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(calls, settled, 'still polling after the client left');
    } finally {
      engine.changesSince = original;
    }
  });
});

describe('access and the rest of the file API', { concurrency: true }, () => {
  test('a read-only token may search and watch but not replace or edit', async () => {
    const v = await vol({ '/a.txt': 'abc' });
    const { secret } = await client.createToken({ name: 'reader', volume: v.name, readOnly: true });
    const reader = await Volume.get(v.name, { client: new Stowage({ url: srv.url, token: secret }) });
    assert.equal((await reader.files.search('/', { regex: 'b' })).matches.length, 1);
    await assert.rejects(reader.files.replace('/', 'b', 'x', { glob: '*' }), (e) => isStowageError(e, 'ReadOnly'));
    await assert.rejects(reader.files.edit('/a.txt', 'b', 'x'), (e) => isStowageError(e, 'ReadOnly'));
    const other = await vol();
    const res = await fetch(`${srv.url}/v1/volumes/${other.name}/watch`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(res.status, 404, 'a scoped token cannot watch another volume');
    assert.equal((await reader.files.read('/a.txt')).toString(), 'abc');
  });

  test('exists, stat, move and remove behave as the spec says, refusing hostile paths', async () => {
    const v = await vol({ '/a/one.txt': '1', '/b.txt': 'b' });
    await assert.rejects(v.files.move('/b.txt', '/a/one.txt'), (e) => isStowageError(e));
    await v.files.move('/b.txt', '/a/one.txt', { overwrite: true });
    assert.equal((await v.files.read('/a/one.txt')).toString(), 'b');
    await assert.rejects(v.files.remove('/a'), (e) => isStowageError(e));
    await assert.rejects(v.files.remove('/missing'), (e) => isStowageError(e, 'NotFound'));
    await v.files.remove('/missing', { force: true });
    for (const bad of ['/a/../b', '../x', '/a//b', '']) {
      await assert.rejects(v.files.stat(bad), (e) => isStowageError(e, 'InvalidArgument'), bad);
      await assert.rejects(v.files.exists(bad), (e) => isStowageError(e, 'InvalidArgument'), bad);
    }
    await v.files.remove('/a', { recursive: true });
    assert.equal(await v.files.exists('/a'), false);
  });

  test('the OpenAPI document describes search, replace, edit and watch', async () => {
    const doc = (await (await fetch(`${srv.url}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const p of ['search', 'replace', 'edit', 'watch']) assert.ok(doc.paths[`/v1/volumes/{name}/${p}`], p);
  });
});

describe('CLI', { concurrency: true }, () => {
  test('find, grep, replace and edit', async () => {
    const v = await vol({ '/docs/a.md': 'Hello world\nhello again\n', '/docs/b.txt': 'nothing', '/x.md': 'HELLO' });
    assert.equal(ok(await run(['find', `${v.name}:/docs`, '--glob', '*.md'])), '/docs/a.md\n');
    assert.equal(
      ok(await run(['grep', 'hello', v.name, '-i', '--glob', '*.md'])),
      '/docs/a.md:1:1:Hello world\n/docs/a.md:2:1:hello again\n/x.md:1:1:HELLO\n',
    );
    const json = JSON.parse(ok(await run(['grep', 'again', `${v.name}:/docs`, '--json']))) as wire.SearchResponse;
    assert.deepEqual(
      json.matches.map((m) => m.path),
      ['/docs/a.md'],
    );
    assert.match(
      ok(await run(['replace', 'hello', 'bye', `${v.name}:/docs`, '--glob', '*.md'])),
      /\/docs\/a.md: 1 replacement\nreplaced in 1 file in commit \w+/,
    );
    assert.match(
      ok(await run(['edit', `${v.name}:/docs/b.txt`, '--old', 'nothing', '--new', 'something'])),
      /^edited .*:\/docs\/b.txt in commit \w+\n$/,
    );
    assert.equal((await v.files.read('/docs/b.txt')).toString(), 'something');
    assert.equal((await v.files.read('/docs/a.md')).toString(), 'Hello world\nbye again\n');
  });

  test("hostile input fails with one clear line and the table's exit status", async () => {
    const v = await vol({ '/a.txt': 'aa aa' });
    const bad = await run(['grep', '(', v.name]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^stowage: invalid regex: [^\n]+\n$/);
    const twice = await run(['edit', `${v.name}:/a.txt`, '--old', 'aa', '--new', 'b']);
    assert.equal(twice.status, 4);
    assert.match(twice.stderr, /occurs 2 times/);
    const dots = await run(['find', `${v.name}:/../etc`]);
    assert.equal(dots.status, 2);
    const t0 = Date.now();
    const slow = await run(['grep', '(a+)+$', v.name, '--timeout', '300']);
    assert.equal(slow.status, 0);
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('watch prints changes until interrupted', async () => {
    const v = await vol();
    // --since pins the start, so the commit below is seen however long the CLI takes to connect.
    const since = (await v.refresh()).head;
    const { child, done } = cli(['watch', v.name, '--since', since]);
    await v.files.write('/new.txt', 'x');
    const deadline = Date.now() + 15_000;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    while (!out.includes('/new.txt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const r = await done;
    assert.match(r.stdout, /^\w+ added\s+\/new.txt\n$/);
    assert.equal(r.status, 0, r.stderr);
  });
});
