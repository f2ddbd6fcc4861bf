/**
 * @module test/scale-faults.test
 * Faults of a scale-out deployment, end to end: the real server over a real
 * PostgreSQL cluster and a real moto bucket, driven through the SDK over
 * loopback HTTP.
 *
 * - The object store failing (500s) or stalling for a while, injected by a
 *   small proxy that stands between everything and moto: the server's S3
 *   endpoint is the proxy, so the URLs it signs for clients point there too.
 *   Writes retry, then fail cleanly with Unavailable; nothing half-published.
 *   The same when only the server's own checks at commit time (HEAD/GET of
 *   uploaded chunks and packs) fail.
 * - PostgreSQL restarted under a stream of concurrent writes: each write
 *   succeeds or fails with Unavailable, history stays consecutive and whole,
 *   and the server keeps working afterwards without a restart.
 * - Startup errors of `stowage serve` (the real binary): a wrong PostgreSQL
 *   password, a missing bucket, an unreachable S3 endpoint each end the
 *   process quickly with one line naming the setting and no secret.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { isStowageError, Stowage, StowageError, Volume } from '@stowage/sdk';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { cliEnv, pattern, spawnCli, type CliResult } from './helpers/cli.js';
import {
  createBucket,
  deleteBucket,
  forwardTo,
  listenOnLoopback,
  motoBlobUrl,
  startMoto,
  type Moto,
} from './helpers/moto.js';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { freePort } from './helpers/free-port.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** What the fault proxy does to a request it affects. */
type Fault = 'none' | 'fail' | 'stall';

/** One request the proxy saw. */
interface Seen {
  method: string;
  /** The request's path (no query): which object it was for. */
  path: string;
  presigned: boolean;
  faulted: Fault;
}

/**
 * A fault-injecting proxy in front of moto. While `fault` is 'fail', every
 * request `affects` selects is answered 500 InternalError; while 'stall', it
 * is read and never answered, and its connection is dropped after `stallMs`
 * (as a middlebox's idle timeout would). Everything else is forwarded.
 * `remaining` bounds how many requests are faulted before the proxy heals
 * by itself (a store that fails briefly, by count rather than by clock).
 */
async function faultProxy(target: string) {
  const t = new URL(target);
  const seen: Seen[] = [];
  const state = {
    fault: 'none' as Fault,
    stallMs: 1500,
    affects: (_req: IncomingMessage, _presigned: boolean): boolean => true,
    remaining: Infinity,
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const presigned = url.searchParams.has('X-Amz-Signature');
    const faulted = state.fault !== 'none' && state.affects(req, presigned) ? state.fault : 'none';
    seen.push({ method: req.method ?? '', path: url.pathname, presigned, faulted });
    if (faulted !== 'none' && --state.remaining <= 0) heal();
    if (faulted === 'fail') {
      req.resume();
      req.on('end', () => {
        res.writeHead(500, { 'content-type': 'application/xml' });
        res.end(
          req.method === 'HEAD'
            ? undefined
            : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message><RequestId>test</RequestId></Error>',
        );
      });
      return;
    }
    if (faulted === 'stall') {
      req.resume();
      const timer = setTimeout(() => req.socket.destroy(), state.stallMs);
      req.socket.once('close', () => clearTimeout(timer));
      return;
    }
    forwardTo(t, req, res);
  });
  function heal(): void {
    state.fault = 'none';
    state.affects = () => true;
    state.remaining = Infinity;
  }
  const endpoint = await listenOnLoopback(server);
  return {
    endpoint,
    seen,
    state,
    heal,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Runs `fn`, which must fail with a StowageError of `code` within `withinMs`; returns the error. */
async function failsCleanly(
  fn: () => Promise<unknown>,
  code: string,
  withinMs: number,
  what: string,
): Promise<StowageError> {
  const t0 = Date.now();
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  const took = Date.now() - t0;
  assert.ok(err !== undefined, `${what}: expected a failure, but it succeeded`);
  assert.ok(err instanceof StowageError, `${what}: expected a StowageError, got ${String(err)}`);
  assert.equal(err.code, code, `${what}: ${err.message}`);
  assert.ok(took < withinMs, `${what}: failed after ${took} ms (bound ${withinMs} ms)`);
  return err;
}

describe('scale-out faults (PostgreSQL + S3)', () => {
  let pgsrv: TestPostgres;
  let moto: Moto;
  const dirs: string[] = [];
  const tempDir = async (name: string) => {
    const d = await mkdtemp(join(tmpdir(), `stowage-faults-${name}-`));
    dirs.push(d);
    return d;
  };

  before(async () => {
    [pgsrv, moto] = await Promise.all([startTestPostgres(), startMoto()]);
  });

  after(async () => {
    await Promise.all([pgsrv?.stop(), moto?.stop()]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  describe('object store failing or stalling', () => {
    let bucket: string;
    let proxy: Awaited<ReturnType<typeof faultProxy>>;
    let server: RunningServer;
    let vol: Volume;

    before(async () => {
      bucket = await createBucket(moto.endpoint);
      proxy = await faultProxy(moto.endpoint);
      // Short S3 timeouts so that a stalled store fails within the test's patience (production defaults are 30 s x 4).
      const blobUrl = motoBlobUrl(proxy.endpoint, bucket, {
        maxAttempts: '3',
        timeoutMs: '800',
        connectTimeoutMs: '800',
      });
      server = await startServer({
        dataDir: await tempDir('s3'),
        port: 0,
        host: '127.0.0.1',
        metadataUrl: await pgsrv.createDatabase('faults_s3'),
        blobUrl,
        log: () => undefined,
      });
      vol = await Volume.create('faulty', { client: new Stowage({ url: server.url, token: server.adminToken! }) });
      await vol.files.write('/seed.txt', 'seed\n');
    });

    after(async () => {
      await server?.close();
      await proxy?.close();
      if (bucket) await deleteBucket(moto.endpoint, bucket).catch(() => undefined);
    });

    /** Head, history and the paths that must not exist, before a failing write; `check()` asserts nothing moved. */
    const unchanged = async (paths: string[]) => {
      const head = (await vol.refresh()).head;
      const history = (await vol.history({ limit: 5 })).commits.map((c) => `${c.seq}:${c.id}`);
      for (const p of paths) assert.equal(await vol.files.exists(p), false, `${p} exists before the test`);
      return async (what: string) => {
        assert.equal((await vol.refresh()).head, head, `${what}: the head moved`);
        assert.deepEqual(
          (await vol.history({ limit: 5 })).commits.map((c) => `${c.seq}:${c.id}`),
          history,
          `${what}: history changed`,
        );
        for (const p of paths) assert.equal(await vol.files.exists(p), false, `${what}: ${p} was published`);
      };
    };

    const writeAndReadBack = async (path: string, data: Buffer) => {
      await vol.files.write(path, data);
      const back = await vol.files.read(path);
      assert.equal(sha(back), sha(data), `${path} reads back byte-identical`);
    };

    it('500s on every request: a large and a packed small write fail with Unavailable after retries, nothing published; after healing they succeed', {
      timeout: 30_000,
    }, async () => {
      const big = pattern(2 * MiB + 12345, 11);
      const small = pattern(3000, 12);
      const check = await unchanged(['/big-500.bin', '/small-500.txt']);
      proxy.state.fault = 'fail';
      const mark = proxy.seen.length;
      const [eBig, eSmall] = await Promise.all([
        failsCleanly(
          () => vol.files.write('/big-500.bin', big),
          'Unavailable',
          15_000,
          'large write while the store answers 500',
        ),
        failsCleanly(
          () => vol.files.write('/small-500.txt', small),
          'Unavailable',
          15_000,
          'packed write while the store answers 500',
        ),
      ]);
      const failedPuts = proxy.seen
        .slice(mark)
        .filter((s) => s.method === 'PUT' && s.presigned && s.faulted === 'fail');
      assert.ok(
        failedPuts.length >= 2 * 4,
        `each signed PUT was retried (4 attempts each): ${failedPuts.length} failed PUTs`,
      );
      assert.match(eBig.message, /500|InternalError|blob store/i, eBig.message);
      assert.match(eSmall.message, /500|InternalError|blob store/i, eSmall.message);
      proxy.heal();
      await check('after failed writes');
      await writeAndReadBack('/big-500.bin', big);
      await writeAndReadBack('/small-500.txt', small);
    });

    it('a store that fails only briefly: the retries ride it out', { timeout: 30_000 }, async () => {
      const big = pattern(MiB + 777, 13);
      // The client's first two signed PUTs fail (500), then the store is well again.
      proxy.state.fault = 'fail';
      proxy.state.affects = (req, presigned) => presigned && req.method === 'PUT';
      proxy.state.remaining = 2;
      const mark = proxy.seen.length;
      await writeAndReadBack('/big-brief.bin', big);
      const puts = proxy.seen.slice(mark).filter((s) => s.method === 'PUT' && s.presigned);
      const faulted = puts.filter((s) => s.faulted === 'fail');
      assert.equal(faulted.length, 2, 'two signed PUTs were failed');
      for (const f of faulted) {
        assert.ok(
          puts.slice(puts.indexOf(f) + 1).some((s) => s.path === f.path && s.faulted === 'none'),
          `the failed PUT of ${f.path} was retried and passed`,
        );
      }
      assert.equal(proxy.state.fault, 'none', 'the proxy healed after its two faults');
    });

    it('stalling on every request: writes fail with Unavailable within a bound, nothing published; after healing they succeed', {
      timeout: 40_000,
    }, async () => {
      const big = pattern(2 * MiB + 54321, 21);
      const small = pattern(1500, 22);
      const check = await unchanged(['/big-stall.bin', '/small-stall.txt']);
      proxy.state.fault = 'stall';
      proxy.state.stallMs = 1200;
      const mark = proxy.seen.length;
      await Promise.all([
        failsCleanly(
          () => vol.files.write('/big-stall.bin', big),
          'Unavailable',
          20_000,
          'large write while the store stalls',
        ),
        failsCleanly(
          () => vol.files.write('/small-stall.txt', small),
          'Unavailable',
          20_000,
          'packed write while the store stalls',
        ),
      ]);
      assert.ok(
        proxy.seen.slice(mark).filter((s) => s.faulted === 'stall').length >= 2 * 4,
        'stalled PUTs were retried',
      );
      proxy.heal();
      await check('after stalled writes');
      await writeAndReadBack('/big-stall.bin', big);
      await writeAndReadBack('/small-stall.txt', small);
    });

    it("the server's own HEAD/GET at commit time failing or stalling: commit refused with Unavailable, nothing published", {
      timeout: 40_000,
    }, async () => {
      const big = pattern(2 * MiB + 99, 31);
      const small = pattern(2222, 32);
      const check = await unchanged(['/big-verify.bin', '/small-verify.txt']);
      // Presigned PUTs from the client pass; the server's signed-header HEAD/GET (verifying uploads and packs) fail.
      for (const fault of ['fail', 'stall'] as const) {
        proxy.state.fault = fault;
        proxy.state.stallMs = 5000; // longer than the server's S3 timeout (800 ms): the SDK gives up first
        proxy.state.affects = (req, presigned) => !presigned && (req.method === 'HEAD' || req.method === 'GET');
        const mark = proxy.seen.length;
        await Promise.all([
          failsCleanly(
            () => vol.files.write('/big-verify.bin', big),
            'Unavailable',
            15_000,
            `large write, verification ${fault}s`,
          ),
          failsCleanly(
            () => vol.files.write('/small-verify.txt', small),
            'Unavailable',
            15_000,
            `packed write, verification ${fault}s`,
          ),
        ]);
        const seen = proxy.seen.slice(mark);
        assert.ok(
          seen.some((s) => s.method === 'PUT' && s.presigned && s.faulted === 'none'),
          'the chunk and pack PUTs went through',
        );
        assert.ok(
          seen.some((s) => s.method === 'HEAD' && !s.presigned && s.faulted === fault),
          `the server's HEADs were ${fault}ed`,
        );
        proxy.heal();
        await check(`after verification ${fault}ed`);
      }
      await writeAndReadBack('/big-verify.bin', big);
      await writeAndReadBack('/small-verify.txt', small);
    });
  });

  describe('PostgreSQL restarted mid-run', () => {
    let bucket: string;
    let server: RunningServer;

    before(async () => {
      bucket = await createBucket(moto.endpoint);
      server = await startServer({
        dataDir: await tempDir('pg'),
        port: 0,
        host: '127.0.0.1',
        metadataUrl: await pgsrv.createDatabase('faults_pg'),
        blobUrl: motoBlobUrl(moto.endpoint, bucket),
        log: () => undefined,
      });
    });

    after(async () => {
      await server?.close();
      if (bucket) await deleteBucket(moto.endpoint, bucket).catch(() => undefined);
    });

    it('concurrent writers across a restart: each write succeeds or fails with Unavailable, nothing torn, and the server recovers by itself', {
      timeout: 40_000,
    }, async () => {
      const WRITERS = 6;
      const token = server.adminToken!;
      const first = await Volume.create('pg-restart', { client: new Stowage({ url: server.url, token }) });
      const startSeq = (await first.history({ limit: 1 })).commits[0]!.seq;
      const handles = await Promise.all(
        Array.from({ length: WRITERS }, () =>
          Volume.get('pg-restart', { client: new Stowage({ url: server.url, token }) }),
        ),
      );
      const content = (w: number, j: number) =>
        j % 3 === 2 ? pattern(MiB + 100 * w + j, 1000 * w + j) : Buffer.from(`writer ${w} write ${j}\n`.repeat(j + 1));

      const ok = new Map<string, Buffer>();
      const failed = new Map<string, unknown>();
      let stop = false;
      let restarted = false;
      let okAfterRestart = 0;
      const writer = async (w: number) => {
        const vol = handles[w]!;
        for (let j = 0; !stop; j++) {
          const path = `/w${w}/f${j}.bin`;
          const data = content(w, j);
          try {
            await vol.files.write(path, data);
            ok.set(path, data);
            if (restarted) okAfterRestart++;
          } catch (e) {
            failed.set(path, e);
            await sleep(50);
          }
        }
      };
      const running = Array.from({ length: WRITERS }, (_, w) => writer(w));
      // Let the stream get going, then restart PostgreSQL under it.
      while (ok.size < WRITERS * 2) await sleep(20);
      const okBefore = ok.size;
      const t0 = Date.now();
      await pgsrv.restart();
      const restartMs = Date.now() - t0;
      restarted = true;
      // Keep writing until every writer could have landed a few commits on the new connections.
      const deadline = Date.now() + 15_000;
      while (okAfterRestart < WRITERS * 3 && Date.now() < deadline) await sleep(50);
      stop = true;
      await Promise.all(running);

      assert.ok(
        okAfterRestart >= WRITERS * 3,
        `writes succeed again after the restart without restarting Stowage (${okAfterRestart} did)`,
      );
      for (const [path, e] of failed) {
        assert.ok(isStowageError(e), `${path}: not a StowageError: ${String(e)}`);
        assert.equal(e.code, 'Unavailable', `${path}: ${e.code}: ${e.message}`);
      }

      // Nothing torn: consecutive history, one commit per file that exists, every acknowledged write present and intact.
      const vol = handles[0]!;
      const commits: Array<{ seq: number; paths: string[]; parent: string | null; id: string }> = [];
      for (let before: number | undefined; ; ) {
        const page = await vol.history({ limit: 1000, ...(before !== undefined ? { before } : {}) });
        commits.push(...page.commits);
        if (page.nextBefore === null || page.commits.at(-1)!.seq <= startSeq) break;
        before = page.nextBefore;
      }
      const newCommits = commits.filter((c) => c.seq > startSeq).sort((a, b) => a.seq - b.seq);
      newCommits.forEach((c, i) => {
        assert.equal(c.seq, startSeq + 1 + i, 'commit seqs are consecutive');
        if (i > 0) assert.equal(c.parent, newCommits[i - 1]!.id, `commit ${c.seq} follows ${c.seq - 1}`);
        assert.equal(c.paths.length, 1, `commit ${c.seq} changed one path`);
      });
      const listed = (await vol.files.list('/', { recursive: true }))
        .filter((f) => f.type === 'file')
        .map((f) => f.path)
        .sort();
      assert.deepEqual(
        newCommits.map((c) => c.paths[0]!).sort(),
        listed,
        'the files present are exactly those the commits wrote',
      );
      for (const path of ok.keys()) assert.ok(listed.includes(path), `acknowledged write ${path} is present`);
      for (const path of listed) assert.ok(ok.has(path) || failed.has(path), `${path} was written by a writer`);
      for (const [path, data] of ok)
        assert.equal(sha(await vol.files.read(path)), sha(data), `${path} reads back intact`);
      // A write whose answer was lost in the restart may have landed: then it is whole too.
      for (const [path] of failed) {
        if (listed.includes(path)) {
          const [, w, j] = /^\/w(\d+)\/f(\d+)\.bin$/.exec(path)!;
          assert.equal(
            sha(await vol.files.read(path)),
            sha(content(Number(w), Number(j))),
            `${path} (answer lost) is intact`,
          );
        }
      }
      console.log(
        `# pg restart: ${okBefore} writes before, restart took ${restartMs} ms, ${ok.size} succeeded in all, ${failed.size} failed cleanly, ${okAfterRestart} after the restart, ${newCommits.length} commits`,
      );
    });
  });

  describe('stowage serve refuses bad stores at startup', () => {
    /** Runs `stowage serve` with `args`; kills it (a failure) if it has not exited within 20 s. */
    const serve = async (args: string[]): Promise<CliResult & { ms: number }> => {
      const data = await tempDir('cli');
      const t0 = Date.now();
      const { child, done } = spawnCli(['serve', '--data', data, '--port', '0', ...args], {
        env: cliEnv({ STOWAGE_DATA: data }),
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        const r = await done;
        return { ...r, ms: Date.now() - t0 };
      } finally {
        clearTimeout(killer);
      }
    };
    const exitsWithOneLine = (r: CliResult & { ms: number }, what: string) => {
      assert.equal(r.signal, null, `${what}: still running after 20 s (killed); stderr: ${r.stderr}`);
      assert.notEqual(r.status, 0, `${what}: exit status 0; stderr: ${r.stderr}`);
      assert.ok(r.ms < 15_000, `${what}: took ${r.ms} ms to give up`);
      assert.ok(!/Stowage listening/.test(r.stdout), `${what}: it started listening: ${r.stdout}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: one clear line, got:\n${r.stderr}`);
      return lines[0]!;
    };

    it('wrong PostgreSQL password, missing bucket, unreachable S3 endpoint: exit non-zero quickly with one line naming the setting, no secret', {
      timeout: 30_000,
    }, async () => {
      const wrongPassword = 'not-the-Pa55word-xyz';
      const badPg = new URL(pgsrv.url);
      badPg.password = wrongPassword;
      const goodPg = await pgsrv.createDatabase('faults_cli');
      const secret = 'VERY-SECRET-ACCESS-KEY-123';
      const closedPort = await freePort();
      const [pgRes, bucketRes, endpointRes] = await Promise.all([
        serve(['--metadata', badPg.href]),
        serve([
          '--metadata',
          goodPg,
          '--blobs',
          motoBlobUrl(moto.endpoint, 'no-such-bucket-faults', { secretAccessKey: secret }),
        ]),
        serve([
          '--metadata',
          goodPg,
          '--blobs',
          motoBlobUrl(`http://127.0.0.1:${closedPort}`, 'any-bucket', {
            secretAccessKey: secret,
            connectTimeoutMs: '1000',
          }),
        ]),
      ]);

      const pgLine = exitsWithOneLine(pgRes, 'wrong PostgreSQL password');
      assert.match(pgLine, /--metadata/, pgLine);
      assert.match(pgLine, /password authentication failed|authentication/i, pgLine);
      assert.ok(
        !pgRes.stderr.includes(wrongPassword) && !pgRes.stdout.includes(wrongPassword),
        `the password is printed: ${pgRes.stderr}`,
      );
      assert.ok(!pgRes.stderr.includes(pgsrv.password), 'the real password is printed');

      const bucketLine = exitsWithOneLine(bucketRes, 'missing bucket');
      assert.match(bucketLine, /--blobs/, bucketLine);
      assert.match(bucketLine, /no-such-bucket-faults/, bucketLine);
      assert.match(bucketLine, /NoSuchBucket/, bucketLine);
      assert.ok(
        !bucketRes.stderr.includes(secret) && !bucketRes.stdout.includes(secret),
        `the secret key is printed: ${bucketRes.stderr}`,
      );

      const endpointLine = exitsWithOneLine(endpointRes, 'unreachable S3 endpoint');
      assert.match(endpointLine, /--blobs/, endpointLine);
      assert.match(endpointLine, new RegExp(`127\\.0\\.0\\.1:${closedPort}`), endpointLine);
      assert.match(endpointLine, /ECONNREFUSED|connect|reach/i, endpointLine);
      assert.ok(
        !endpointRes.stderr.includes(secret) && !endpointRes.stdout.includes(secret),
        `the secret key is printed: ${endpointRes.stderr}`,
      );
      console.log(
        `# startup errors: ${pgRes.ms} / ${bucketRes.ms} / ${endpointRes.ms} ms\n#   ${pgLine}\n#   ${bucketLine}\n#   ${endpointLine}`,
      );
    });
  });
});
