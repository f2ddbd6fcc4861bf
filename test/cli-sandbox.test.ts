/**
 * @module test/cli-sandbox.test
 * The `stowage sandbox` commands against a real `stowage serve` process,
 * which runs this machine's sandbox host by default: create with a volume,
 * exec with live output and the command's exit status, logs, files in and
 * out, an interactive terminal (`exec -it` under `script`, a real pty),
 * listings as JSON, terminate; and `--no-sandboxes`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalSandboxHost } from '../src/sandbox/daemon/local-host.js';
import { CLI_MAIN, cliEnv, spawnCli, type CliResult } from './helpers/cli.js';
import { TEST_IMAGES_DATA_DIR, busyboxImage } from './helpers/sandbox-images.js';

let dataDir: string;
let serve: ChildProcess;
let url: string;
let serveOut = '';

function cli(args: string[], input?: string): Promise<CliResult> {
  return spawnCli(args, {
    env: cliEnv({ STOWAGE_URL: url, STOWAGE_DATA: dataDir }),
    ...(input !== undefined ? { input } : {}),
  }).done;
}

function ok(r: CliResult): string {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function startServe(extra: string[] = []): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(
    process.execPath,
    [CLI_MAIN, 'serve', '--data', dataDir, '--port', '0', '--image-cache', TEST_IMAGES_DATA_DIR, ...extra],
    { env: cliEnv({}), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const found = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no URL: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', () => reject(new Error(`serve exited: ${out}`)));
  });
  return { child, url: found, out: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

before(async () => {
  await busyboxImage();
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-cli-sb-'));
  const s = await startServe();
  serve = s.child;
  url = s.url;
  serveOut = s.out();
});

after(async () => {
  if (serve) await stop(serve);
  if (!dataDir) return;
  // Whatever a failed test left running: its supervisors outlive the server.
  const host = await LocalSandboxHost.open({ dataDir });
  for (const id of host.liveIds()) await host.terminate(id, 'test over');
  await host.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('stowage sandbox', () => {
  it('creates a sandbox with a volume, runs commands, moves files, and terminates it', async () => {
    assert.match(serveOut, /sandbox host: this machine runs sandboxes/);
    ok(await cli(['volume', 'create', 'notebooks']));
    const id = ok(
      await cli(['sandbox', 'create', '--image', 'busybox', '--volume', 'notebooks:/mnt/nb', '--env', 'WHO=cli']),
    ).trim();
    assert.match(id, /^sb_[a-z0-9]{20}$/);

    const run = await cli(['sandbox', 'exec', id, '--', 'sh', '-c', 'echo hello $WHO; echo warn >&2; exit 3']);
    assert.equal(run.status, 3, 'the command exit status is the CLI exit status');
    assert.equal(run.stdout, 'hello cli\n');
    assert.equal(run.stderr, 'warn\n');
    const piped = await cli(['sandbox', 'exec', '-i', id, '--', 'wc', '-c'], 'twelve bytes');
    assert.equal(piped.stdout.trim(), '12');

    const logs = await cli(['sandbox', 'logs', id]);
    assert.equal(logs.stdout.trim(), '12', 'logs shows the latest exec');

    const local = join(dataDir, 'local.txt');
    await writeFile(local, 'copied in');
    ok(await cli(['sandbox', 'cp', local, `${id}:/mnt/nb/copied.txt`]));
    assert.equal(ok(await cli(['sandbox', 'read', id, '/mnt/nb/copied.txt'])), 'copied in');
    ok(await cli(['sandbox', 'write', id, '/tmp/stdin.txt'], 'from stdin'));
    const back = join(dataDir, 'back.txt');
    ok(await cli(['sandbox', 'cp', `${id}:/tmp/stdin.txt`, back]));
    assert.equal(await readFile(back, 'utf8'), 'from stdin');

    const listed = JSON.parse(ok(await cli(['sandbox', 'ls', '--json']))) as Array<{ id: string; volumes: unknown[] }>;
    assert.deepEqual(
      listed.map((s) => s.id),
      [id],
    );
    const execs = JSON.parse(ok(await cli(['sandbox', 'execs', id, '--json']))) as Array<{ exitCode?: number }>;
    assert.deepEqual(
      execs.map((e) => e.exitCode),
      [3, 0],
    );
    assert.match(ok(await cli(['sandbox', 'get', id])), /status:\s+running/);

    ok(await cli(['sandbox', 'terminate', id]));
    assert.match(ok(await cli(['sandbox', 'get', id])), /terminated/);
    assert.equal(ok(await cli(['cat', 'notebooks:/copied.txt'])), 'copied in', 'the volume kept the work');
    const refused = await cli(['sandbox', 'exec', id, '--', 'true']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /terminated/);
  });

  it('runs an interactive terminal with -it', async () => {
    const id = ok(await cli(['sandbox', 'create', '--image', 'busybox'])).trim();
    // `script` gives the CLI a real terminal, as a user's shell would.
    const command = `${process.execPath} ${CLI_MAIN} sandbox exec -it ${id} -- sh -c 'test -t 0 && echo on-a-tty; stty size; read line; echo "typed $line"'`;
    const r = spawnSync('script', ['-qec', command, '/dev/null'], {
      input: 'hello\n',
      env: cliEnv({ STOWAGE_URL: url, STOWAGE_DATA: dataDir, COLUMNS: '100', LINES: '30' }),
      encoding: 'utf8',
      timeout: 60_000,
    });
    const out = r.stdout.replace(/\r/g, '');
    assert.match(out, /on-a-tty/);
    assert.match(out, /^\d+ \d+$/m);
    assert.match(out, /typed hello/);
    ok(await cli(['sandbox', 'terminate', id]));
  });

  it('refuses bad input with a clear error and a non-zero exit', async () => {
    const bad = await cli(['sandbox', 'create', '--image', 'busybox', '--volume', 'notebooks:relative']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /VOLUME:\/mount\/path/);
    const proc = await cli(['sandbox', 'create', '--image', 'busybox', '--volume', 'notebooks:/proc/x']);
    assert.notEqual(proc.status, 0);
    assert.match(proc.stderr, /\/proc/);
    const missing = await cli(['sandbox', 'get', 'sb_00000000000000000000']);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /not found|no sandbox/i);
  });

  it('serve --no-sandboxes serves volumes and answers sandbox calls with what to do', async () => {
    await stop(serve);
    const s = await startServe(['--no-sandboxes']);
    serve = s.child;
    url = s.url;
    const r = await cli(['sandbox', 'create', '--image', 'busybox']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--no-sandboxes/);
    ok(await cli(['volume', 'ls']));
  });
});
