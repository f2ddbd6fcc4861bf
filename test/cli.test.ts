/**
 * @module test/cli.test
 * End-to-end tests of the real compiled `stowage` binary (spawned with
 * node) against a real server over loopback: stdout, the single stderr line
 * of errors, and exit statuses, including hostile input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { CLI_MAIN, cliEnv, pattern, spawnCli, type CliResult } from './helpers/cli.js';

let srv: TestServer;
let work: string;
let emptyData: string;
let seq = 0;

const fresh = (prefix = 'c'): string => `${prefix}-${process.pid}-${++seq}`;

type Result = CliResult;

/** Environment without the caller's STOWAGE_* settings, pointing at the test server. */
function envFor(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token, STOWAGE_DATA: emptyData, ...overrides });
}

/** Runs the CLI (asynchronously: the server lives in this process). */
function cli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: Buffer | string } = {},
): Promise<Result> {
  return spawnCli(args, { env: envFor(options.env), ...(options.input !== undefined ? { input: options.input } : {}) })
    .done;
}

/** Asserts a failure: the exit status and exactly one stderr line "stowage: ..." matching `re`. */
function assertFails(r: Result, status: number, re: RegExp): void {
  assert.equal(r.status, status, `exit status (stderr: ${r.stderr})`);
  assert.match(r.stderr, /^stowage: [^\n]+\n$/, `one stderr line, got ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, re);
  assert.equal(r.stdout, '');
}

/** Asserts success and returns stdout. */
function ok(r: Result): string {
  assert.equal(r.status, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  srv = await startTestServer();
  work = await mkdtemp(join(tmpdir(), 'stowage-cli-test-'));
  emptyData = await mkdtemp(join(tmpdir(), 'stowage-cli-nodata-'));
});

after(async () => {
  await srv?.close();
  for (const d of [work, emptyData]) if (d) await rm(d, { recursive: true, force: true });
});

describe('volume commands', { concurrency: true }, () => {
  test('create, ls, get, rm', async () => {
    const name = fresh();
    assert.match(
      ok(await cli(['volume', 'create', name, '--cap', '64M', '--access-mode', 'rwx'])),
      new RegExp(`^created volume ${name} \\(vol_\\w+, RWX, cap 64 MiB\\)\\n$`),
    );
    const table = ok(await cli(['volume', 'ls']));
    assert.match(table.split('\n')[0]!, /^NAME\s+MODE\s+SIZE\s+CAP\s+FILES\s+HEAD\s+UPDATED$/);
    assert.ok(table.split('\n').some((l) => l.startsWith(`${name} `) && l.includes('64 MiB')));
    const listed = JSON.parse(ok(await cli(['volume', 'ls', '--json']))) as Array<{ name: string }>;
    assert.ok(listed.some((v) => v.name === name));
    const info = JSON.parse(ok(await cli(['volume', 'get', name, '--json']))) as {
      name: string;
      cap: number;
      accessMode: string;
    };
    assert.deepEqual([info.name, info.cap, info.accessMode], [name, 64 * MiB, 'RWX']);
    assert.match(ok(await cli(['volume', 'get', name])), /^name:\s+\S+\n/m);
    assertFails(await cli(['volume', 'create', name]), 4, /exists/);
    assert.equal(ok(await cli(['volume', 'rm', name])), `deleted volume ${name}\n`);
    assertFails(await cli(['volume', 'get', name]), 3, /not found|no volume/i);
  });

  test('snapshot, snapshots, restore, fork, resize, log', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    ok(await cli(['put', '-', `${name}:/state`], { input: 'v1' }));
    assert.match(
      ok(await cli(['volume', 'snapshot', name, 'first'])),
      /^created snapshot first of .* at commit [0-9a-f]{12}\n$/,
    );
    const snaps = JSON.parse(ok(await cli(['volume', 'snapshots', name, '--json']))) as Array<{ name: string }>;
    assert.deepEqual(
      snaps.map((s) => s.name),
      ['first'],
    );
    assert.match(ok(await cli(['volume', 'snapshots', name])), /^NAME\s+COMMIT\s+CREATED\nfirst\s+[0-9a-f]{12}\s/);
    ok(await cli(['put', '-', `${name}:/state`], { input: 'v2' }));
    assert.equal(ok(await cli(['cat', `${name}:/state`])), 'v2');
    assert.match(
      ok(await cli(['volume', 'restore', name, 'first'])),
      /^restored .* to snapshot first \(commit [0-9a-f]{12}\)\n$/,
    );
    assert.equal(ok(await cli(['cat', `${name}:/state`])), 'v1');
    const forkName = fresh('fork');
    assert.match(
      ok(await cli(['volume', 'fork', name, forkName])),
      new RegExp(`^forked ${name} to ${forkName} \\(vol_\\w+\\)\\n$`),
    );
    ok(await cli(['put', '-', `${forkName}:/state`], { input: 'fork' }));
    assert.equal(ok(await cli(['cat', `${name}:/state`])), 'v1');
    assert.equal(ok(await cli(['cat', `${forkName}:/state`])), 'fork');
    assert.match(ok(await cli(['volume', 'resize', name, '3G'])), /cap 3 GiB/);
    const log = JSON.parse(ok(await cli(['volume', 'log', name, '--limit', '2', '--json']))) as {
      commits: Array<{ seq: number }>;
      nextBefore: number | null;
    };
    assert.equal(log.commits.length, 2);
    assert.ok(log.commits[0]!.seq > log.commits[1]!.seq);
    assert.match(
      ok(await cli(['volume', 'log', name])),
      /^SEQ\s+COMMIT\s+CREATED\s+AUTHOR\s+CHANGED\s+SIZE\s+MESSAGE\n/,
    );
    assertFails(await cli(['volume', 'log', name, '--limit', 'lots']), 2, /invalid limit/);
    assertFails(await cli(['volume', 'restore', name, 'nope']), 3, /nope/);
    ok(await cli(['volume', 'snapshot-rm', name, 'first']));
    assert.equal(ok(await cli(['volume', 'snapshots', name, '--json'])).trim(), '[]');
  });
});

describe('file commands', { concurrency: true }, () => {
  test('put a 20 MiB file, cat it back byte for byte; an unchanged re-put sends nothing', async () => {
    const name = fresh();
    const data = pattern(20 * MiB + 5, 3);
    const local = join(work, 'big.bin');
    await writeFile(local, data);
    assertFails(await cli(['put', local, `${name}:/data/big.bin`]), 3, new RegExp(name));
    ok(await cli(['volume', 'create', name]));
    assert.match(
      ok(await cli(['put', local, `${name}:/data/big.bin`, '--mode', '640'])),
      /\(20 MiB, 3 chunks, 3 uploaded, 20 MiB sent\)/,
    );
    const again = JSON.parse(ok(await cli(['put', local, `${name}:/data/big.bin`, '--json']))) as {
      uploadedChunks: number;
      uploadedBytes: number;
      chunks: number;
    };
    assert.deepEqual([again.uploadedChunks, again.uploadedBytes, again.chunks], [0, 0, 3]);
    const cat = await cli(['cat', `${name}:/data/big.bin`]);
    assert.equal(cat.status, 0);
    assert.ok(cat.stdoutBytes.equals(data), 'cat returns the exact bytes');
    const got = join(work, 'got.bin');
    assert.match(ok(await cli(['get', `${name}:/data/big.bin`, got])), /^downloaded /);
    assert.ok((await readFile(got)).equals(data));
    // Into an existing directory, the file keeps its name.
    const into = await mkdtemp(join(work, 'into-'));
    ok(await cli(['get', `${name}:/data/big.bin`, into]));
    assert.ok((await readFile(join(into, 'big.bin'))).equals(data));
    assertFails(await cli(['get', `${name}:/data/big.bin`, join(work, 'no-such-dir', 'x')]), 3, /no-such-dir/);
  });

  test('put a new file reports chunks uploaded; put into a directory keeps the name', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    const local = join(work, 'hello.txt');
    await writeFile(local, 'hello\n');
    assert.match(
      ok(await cli(['put', local, `${name}:/docs/`])),
      new RegExp(`^wrote ${name}:/docs/hello.txt \\(6 B, 1 chunk, 1 uploaded, 6 B sent\\) in commit [0-9a-f]{12}\\n$`),
    );
    assert.equal(ok(await cli(['cat', `${name}:/docs/hello.txt`])), 'hello\n');
    assertFails(await cli(['put', '-', `${name}:/docs/`]), 2, /name the file/);
  });

  test('put - reads standard input', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    const input = pattern(9 * MiB, 11);
    ok(await cli(['put', '-', `${name}:/in.bin`], { input }));
    assert.ok((await cli(['cat', `${name}:/in.bin`])).stdoutBytes.equals(input));
  });

  test('ls, stat, mkdir, mv, rm', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    ok(await cli(['put', '-', `${name}:/a/one.txt`], { input: '1' }));
    ok(await cli(['put', '-', `${name}:/a/b/two.txt`, '--mode', '600'], { input: '22' }));
    const top = ok(await cli(['ls', name]));
    assert.match(top, /^MODE\s+SIZE\s+MODIFIED\s+NAME\n/);
    assert.match(top, /^drwxr-xr-x\s+-\s+\S+ \S+\s+a\/$/m);
    const all = JSON.parse(ok(await cli(['ls', `${name}:/`, '-r', '--json']))) as Array<{ path: string }>;
    assert.deepEqual(all.map((e) => e.path).sort(), ['/a', '/a/b', '/a/b/two.txt', '/a/one.txt']);
    assert.match(ok(await cli(['ls', `${name}:/a`, '--recursive'])), /-rw-------\s+2 B\s+.*\/a\/b\/two\.txt$/m);
    // A file lists as itself.
    assert.match(ok(await cli(['ls', `${name}:/a/one.txt`])), /one\.txt\n$/);
    const st = JSON.parse(ok(await cli(['stat', `${name}:/a/b/two.txt`, '--json']))) as {
      size: number;
      mode: number;
      type: string;
    };
    assert.deepEqual([st.type, st.size, st.mode & 0o777], ['file', 2, 0o600]);
    assert.match(ok(await cli(['stat', `${name}:/a/b/two.txt`])), /^mode:\s+600$/m);
    ok(await cli(['mkdir', `${name}:/x/y`]));
    assert.match(ok(await cli(['mv', `${name}:/a/one.txt`, `${name}:/x/y/one.txt`])), /^moved /);
    assert.equal(ok(await cli(['cat', `${name}:/x/y/one.txt`])), '1');
    assertFails(await cli(['mv', `${name}:/x`, `${fresh()}:/x`]), 2, /within one volume/);
    assertFails(await cli(['rm', `${name}:/a`]), 4, /./);
    assert.match(ok(await cli(['rm', `${name}:/a`, '-r'])), /^removed /);
    assertFails(await cli(['rm', `${name}:/a`]), 3, /./);
    ok(await cli(['rm', `${name}:/a`, '-f']));
    assertFails(await cli(['cat', `${name}:/a/one.txt`]), 3, /./);
  });
});

describe('errors', { concurrency: true }, () => {
  test('hostile targets exit 2 with one clear line', async () => {
    assertFails(await cli(['cat', 'Bad_Name:/x']), 2, /invalid volume name "Bad_Name"/);
    assertFails(await cli(['cat', 'vol:../x']), 2, /must be absolute: write vol:\/x/);
    assertFails(await cli(['cat', 'vol:/a//b']), 2, /empty segment/);
    assertFails(await cli(['cat', 'vol:/a/../b']), 2, /"\." or "\.\."/);
    assertFails(await cli(['cat', 'vol']), 2, /expected VOLUME:\/path/);
    assertFails(await cli(['cat', ':/x']), 2, /missing volume name/);
    assertFails(await cli(['put', '-', 'vol:relative'], { input: 'x' }), 2, /must be absolute/);
    assertFails(await cli(['volume', 'create', 'UPPER']), 2, /invalid volume name/);
    assertFails(await cli(['volume', 'create', 'x', '--cap', 'lots']), 2, /invalid size/);
    assertFails(await cli(['volume', 'create', 'x', '--access-mode', 'RW']), 2, /invalid access mode/);
    assertFails(await cli(['put', '-', 'vol:/x', '--mode', '999'], { input: 'x' }), 2, /invalid mode/);
  });

  test('command-line mistakes exit 2 with one line', async () => {
    assertFails(await cli(['frobnicate']), 2, /unknown command 'frobnicate'/);
    assertFails(await cli(['cat']), 2, /missing required argument/);
    assertFails(await cli(['volume', 'ls', '--bogus']), 2, /unknown option '--bogus'/);
  });

  test('a missing volume exits 3; a missing local file exits 3 naming it', async () => {
    assertFails(await cli(['cat', `${fresh('missing')}:/x`]), 3, /./);
    assertFails(await cli(['ls', fresh('missing')]), 3, /./);
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    assertFails(
      await cli(['put', join(work, 'no-such-file'), `${name}:/x`]),
      3,
      /local file not found: .*no-such-file/,
    );
  });

  test('a bad or missing token exits 5', async () => {
    assertFails(
      await cli(['volume', 'ls'], { env: { STOWAGE_TOKEN: 'bogus' } }),
      5,
      /invalid API token.*STOWAGE_TOKEN/,
    );
    assertFails(await cli(['volume', 'ls', '--token', 'bogus'], { env: { STOWAGE_TOKEN: undefined } }), 5, /token/);
    assertFails(await cli(['volume', 'ls'], { env: { STOWAGE_TOKEN: undefined } }), 5, /bearer token/);
  });

  test('a put over the cap exits 6 naming the cap and the size', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name, '--cap', '1M']));
    const local = join(work, 'two-megs.bin');
    await writeFile(local, pattern(2 * MiB, 5));
    const r = await cli(['put', local, `${name}:/too-big.bin`]);
    assertFails(r, 6, /1 MiB/);
    assert.match(r.stderr, /2 MiB/);
    assertFails(await cli(['cat', `${name}:/too-big.bin`]), 3, /./);
  });

  test('an unreachable server exits 7', async () => {
    assertFails(
      await cli(['volume', 'ls', '--url', 'http://127.0.0.1:9']),
      7,
      /cannot reach Stowage at http:\/\/127\.0\.0\.1:9/,
    );
  });

  test('help and version exit 0', async () => {
    const help = ok(await cli(['--help']));
    assert.match(help, /admin-token/);
    assert.match(ok(await cli(['volume', '--help'])), /snapshot/);
    assert.match(ok(await cli(['--version'])), /^\d+\.\d+\.\d+|unknown/);
  });
});

describe('tokens and operator commands', { concurrency: true }, () => {
  test('token create, ls, revoke; a scoped read-only token', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    ok(await cli(['put', '-', `${name}:/f`], { input: 'data' }));
    const created = await cli(['token', 'create', 'reader', '--volume', name, '--read-only', '--expires', '1h']);
    const secret = ok(created).trim();
    assert.match(
      created.stderr,
      /^created token tok_\w+ \(reader, read-only, expires .*\); the secret above is shown only once\n$/,
    );
    const env = { STOWAGE_TOKEN: secret };
    assert.equal(ok(await cli(['cat', `${name}:/f`], { env })), 'data');
    const denied = await cli(['put', '-', `${name}:/g`], { env, input: 'no' });
    assert.equal(denied.status, 5, denied.stderr);
    assertFails(await cli(['volume', 'get', 'default-nonexistent'], { env }), 3, /./);
    const tokens = JSON.parse(ok(await cli(['token', 'ls', '--json']))) as Array<{ id: string; name: string }>;
    const id = tokens.find((t) => t.name === 'reader')!.id;
    assert.match(ok(await cli(['token', 'ls'])), /^ID\s+NAME\s+VOLUME\s+ACCESS/);
    assert.equal(ok(await cli(['token', 'revoke', id])), `revoked token ${id}\n`);
    assertFails(await cli(['cat', `${name}:/f`], { env }), 5, /revoked/);
    assertFails(await cli(['token', 'create', 'x', '--expires', 'soon']), 2, /invalid duration/);
  });

  test('without a token the admin token file of the data dir is used', async () => {
    const out = ok(
      await cli(['volume', 'ls', '--json'], { env: { STOWAGE_TOKEN: undefined, STOWAGE_DATA: srv.dataDir } }),
    );
    assert.ok(Array.isArray(JSON.parse(out)));
  });

  test('gc --dry-run reports a plan; gc executes', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    ok(await cli(['put', '-', `${name}:/g`], { input: 'garbage soon' }));
    ok(await cli(['volume', 'rm', name]));
    const plan = JSON.parse(
      ok(await cli(['gc', '--data', srv.dataDir, '--dry-run', '--grace', '30m', '--retention', '0s', '--json'])),
    ) as { dryRun: boolean; deletedChunks: number };
    assert.equal(plan.dryRun, true);
    const text = ok(await cli(['gc', '--data', srv.dataDir, '--grace', '30m', '--retention', '0s']));
    assert.match(text, /^mode:\s+executed$/m);
    assertFails(await cli(['gc', '--data', join(work, 'nothing-here')]), 3, /no Stowage data/);
    assertFails(await cli(['gc', '--data', srv.dataDir, '--grace', 'forever']), 2, /invalid duration/);
  });

  test('tenant create prints a working admin token of a separate tenant', async () => {
    const r = await cli(['tenant', 'create', fresh('acme'), '--data', srv.dataDir, '--default-cap', '5G']);
    const secret = ok(r).trim();
    assert.match(r.stderr, /default cap 5 GiB/);
    const vols = JSON.parse(ok(await cli(['volume', 'ls', '--json'], { env: { STOWAGE_TOKEN: secret } }))) as unknown[];
    assert.deepEqual(vols, [], "another tenant sees none of the default tenant's volumes");
  });

  test('tenant create and tenant quota set the storage and uncommitted quotas the tenant sees', async () => {
    const name = fresh('quota');
    const secret = ok(
      await cli([
        'tenant',
        'create',
        name,
        '--data',
        srv.dataDir,
        '--storage-quota',
        '1G',
        '--uncommitted-quota',
        '64M',
      ]),
    ).trim();
    const tenant = async () =>
      (await (await fetch(`${srv.url}/v1/tenant`, { headers: { authorization: `Bearer ${secret}` } })).json()) as {
        storageQuota: number | null;
        uncommittedQuota: number;
      };
    const created = await tenant();
    assert.equal(created.storageQuota, 1024 ** 3);
    assert.equal(created.uncommittedQuota, 64 * MiB);
    const set = JSON.parse(
      ok(
        await cli([
          'tenant',
          'quota',
          name,
          '--data',
          srv.dataDir,
          '--storage-quota',
          'none',
          '--uncommitted-quota',
          '2G',
          '--json',
        ]),
      ),
    ) as { storageQuota: number | null; uncommittedQuota: number };
    assert.equal(set.storageQuota, null);
    assert.equal(set.uncommittedQuota, 2 * 1024 ** 3);
    assert.equal((await tenant()).storageQuota, null);
    assert.match(
      ok(await cli(['tenant', 'quota', name, '--data', srv.dataDir, '--uncommitted-quota', 'default'])),
      /uncommitted quota:\s+default/,
    );
    assert.equal((await tenant()).uncommittedQuota, 16 * 1024 ** 3);
    assertFails(
      await cli(['tenant', 'quota', fresh('nobody'), '--data', srv.dataDir, '--storage-quota', '1G']),
      3,
      /tenant "nobody-[^"]*" not found/,
    );
    assertFails(await cli(['tenant', 'quota', name, '--data', srv.dataDir, '--storage-quota', 'lots']), 2, /size/i);
  });

  test('serve prints its URL, answers, and stops cleanly on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'stowage-cli-serve-'));
    const child = spawn(process.execPath, [CLI_MAIN, 'serve', '--data', dataDir, '--port', '0'], {
      env: envFor({ STOWAGE_TOKEN: undefined }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        // Generous: a loaded 2-core machine has taken over 15 s to start a server (a failure kills it, see finally).
        const timer = setTimeout(() => reject(new Error(`serve printed no URL: ${stdout}`)), 60_000);
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.on('exit', () => reject(new Error(`serve exited: ${stdout}`)));
      });
      const vols = ok(
        await cli(['volume', 'ls', '--json', '--url', url], {
          env: { STOWAGE_TOKEN: undefined, STOWAGE_DATA: dataDir },
        }),
      );
      assert.deepEqual(JSON.parse(vols), []);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      // Never leave a server behind: it would keep the whole test run from ending.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('hostile names in output', { concurrency: true }, () => {
  // Bytes a terminal would act on: C0 controls but tab and the line ends the CLI writes itself, DEL, C1 (incl. the one-byte CSI \x9b), bidi overrides.
  const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
  const HOSTILE = 'a\x1b[2J\rforged line\n\x9b31m\u202e';

  /** Asserts that nothing printed can drive a terminal: no raw control character, no line but the CLI's own. */
  function assertInert(r: Result, lines: { stdout: number; stderr: number }): void {
    for (const [stream, text] of [
      ['stdout', r.stdout],
      ['stderr', r.stderr],
    ] as const) {
      assert.doesNotMatch(text, RAW_CONTROL, `${stream} holds a raw control character: ${JSON.stringify(text)}`);
      assert.equal(text.split('\n').length - 1, lines[stream], `${stream} line count: ${JSON.stringify(text)}`);
    }
  }

  test('a file named with escape sequences, CR, LF and C1 lists, stats and fails visibly escaped', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    const put = await cli(['put', '-', `${name}:/${HOSTILE}`], { input: 'x' });
    assert.equal(put.status, 0, put.stderr);
    assertInert(put, { stdout: 1, stderr: 0 });
    assert.match(put.stdout, /wrote .*a\\x1b\[2J\\rforged line\\n\\x9b31m\\u\{202e\}/);

    const ls = await cli(['ls', `${name}:/`]);
    assertInert(ls, { stdout: 2, stderr: 0 });
    assert.ok(ls.stdout.split('\n')[1]!.endsWith('a\\x1b[2J\\rforged line\\n\\x9b31m\\u{202e}'), ls.stdout);

    const st = await cli(['stat', `${name}:/${HOSTILE}`]);
    assertInert(st, { stdout: 6, stderr: 0 });
    assert.match(st.stdout, /^path: +\/a\\x1b\[2J\\rforged line\\n/);

    // An error naming the file: the server's message carries the name, the CLI escapes it.
    const missing = await cli(['cat', `${name}:/${HOSTILE}/below`]);
    assert.equal(missing.status, 3, missing.stderr);
    assertInert(missing, { stdout: 0, stderr: 1 });
    assert.match(missing.stderr, /^stowage: /);

    // JSON stays JSON and round-trips to the real name, with C1 and bidi controls as \u escapes.
    const json = await cli(['ls', `${name}:/`, '--json']);
    assertInert(json, { stdout: json.stdout.split('\n').length - 1, stderr: 0 });
    const entries = JSON.parse(json.stdout) as Array<{ name: string }>;
    assert.deepEqual(
      entries.map((e) => e.name),
      [HOSTILE],
    );
  });

  test('a local file name with control characters is escaped in the error that names it', async () => {
    const name = fresh();
    ok(await cli(['volume', 'create', name]));
    const r = await cli(['put', join(work, `gone\x1b]0;owned\x07\rline`), `${name}:/x`]);
    assert.notEqual(r.status, 0);
    assertInert(r, { stdout: 0, stderr: 1 });
    assert.match(r.stderr, /gone\\x1b\]0;owned\\x07/);
  });
});
