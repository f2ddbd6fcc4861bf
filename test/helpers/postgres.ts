/**
 * @module test/helpers/postgres
 * A real, throwaway PostgreSQL server for tests: a fresh cluster (initdb) in
 * a temp dir, started with pg_ctl on a free loopback port, tuned for speed
 * (fsync off, small buffers), deleted by `stop()`.
 *
 * Binaries come from PATH or Debian's /usr/lib/postgresql/<version>/bin
 * (`apt-get install postgresql`; setup.sh installs it). When none are found
 * this throws: a test that needs PostgreSQL fails rather than skips.
 *
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the
 * `postgres` OS user (Debian's package creates it) and its commands run
 * through `runuser`. TCP logins need the password (scram-sha-256), so tests
 * can also check what a wrong one does; the Unix socket in the temp dir
 * trusts everyone.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** A running test cluster. */
export interface TestPostgres {
  /** URL of the test database as the `stowage` user with its password, e.g. postgres://stowage:pw@127.0.0.1:5433/stowage. */
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** URL of another database (or the same one with extra parameters). */
  urlFor(database: string, params?: Record<string, string>): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** pg_ctl restart -m fast: the server drops every connection and comes back on the same port. */
  restart(): Promise<void>;
  /** Stops the server (pg_ctl stop -m fast) without deleting anything; start() brings it back. */
  stopServer(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes the cluster. Idempotent. */
  stop(): Promise<void>;
}

const USER = 'stowage';
const DATABASE = 'stowage';

/** The directory holding initdb, pg_ctl and postgres. */
async function findBinDir(): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const initdb = join(dir, 'initdb');
    if (existsSync(initdb) && existsSync(join(dir, 'pg_ctl'))) {
      // Debian links /usr/bin names to a wrapper or /usr/local/bin to the real
      // binary; use the directory of the real one (it holds `postgres` too).
      const real = await realpath(initdb);
      const realDir = join(real, '..');
      if (existsSync(join(realDir, 'postgres'))) return realDir;
    }
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  throw new Error(
    'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin. ' +
      'Install them (Debian: apt-get install postgresql, or run ./setup.sh); these tests do not skip without them.',
  );
}

/** Who runs the cluster: ourselves, or (as root) the postgres OS user. */
async function clusterOwner(): Promise<
  { uid: number; gid: number; wrap: (cmd: string, args: string[]) => [string, string[]] } | undefined
> {
  if (process.getuid?.() !== 0) return undefined;
  const { stdout } = await run('id', ['-u', 'postgres']).catch(() => {
    throw new Error(
      'running as root, and there is no "postgres" OS user to run the test PostgreSQL as (apt-get install postgresql creates it)',
    );
  });
  const uid = Number(stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid, wrap: (cmd, args) => ['runuser', ['-u', 'postgres', '--', cmd, ...args]] };
}

/**
 * Creates and starts a throwaway cluster with a `stowage` user (with a
 * random password) and an empty `stowage` database. About a second.
 *
 * @example
 * const pgsrv = await startTestPostgres();
 * try { const store = await openPostgresMetadataStore({ url: pgsrv.url }); ... } finally { await pgsrv.stop(); }
 */
export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = await findBinDir();
  const owner = await clusterOwner();
  const dir = await mkdtemp(join(tmpdir(), 'stowage-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  let port = 0;
  let running = false;
  let stopped = false;

  const exec = async (name: string, args: string[]): Promise<void> => {
    const [cmd, argv] = owner ? owner.wrap(join(bin, name), args) : [join(bin, name), args];
    try {
      await run(cmd, argv, { cwd: dir, timeout: 60_000 });
    } catch (err) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      const e = err as { stderr?: string; message: string };
      throw new Error(
        `test PostgreSQL: ${name} failed: ${e.stderr?.trim() || e.message}${log ? `\nserver log:\n${log.slice(-2000)}` : ''}`,
      );
    }
  };

  const start = async (): Promise<void> => {
    const opts = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c shared_buffers=16MB',
      '-c max_connections=200',
    ].join(' ');
    await exec('pg_ctl', ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', opts]);
    running = true;
  };

  try {
    if (owner) {
      await chown(dir, owner.uid, owner.gid);
    }
    await chmod(dir, 0o700);
    const pwFile = join(dir, 'pwfile');
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (owner) await chown(pwFile, owner.uid, owner.gid);
    await exec('initdb', [
      '-D',
      dataDir,
      '-U',
      USER,
      '--pwfile',
      pwFile,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    port = await freePort();
    await start();

    const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`create database ${DATABASE}`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    if (running) await exec('pg_ctl', ['stop', '-m', 'immediate', '-D', dataDir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const urlFor = (database: string, params: Record<string, string> = {}): string => {
    const u = new URL(`postgres://127.0.0.1:${port}/${database}`);
    u.username = USER;
    u.password = password;
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.href;
  };

  return {
    url: urlFor(DATABASE),
    host: '127.0.0.1',
    port,
    user: USER,
    password,
    database: DATABASE,
    urlFor,
    async createDatabase(name: string): Promise<string> {
      const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres' });
      await admin.connect();
      try {
        await admin.query(`create database ${pg.escapeIdentifier(name)}`);
      } finally {
        await admin.end();
      }
      return urlFor(name);
    },
    async restart(): Promise<void> {
      await exec('pg_ctl', ['restart', '-w', '-t', '60', '-m', 'fast', '-D', dataDir, '-l', logFile]);
    },
    async stopServer(): Promise<void> {
      await exec('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', dataDir]);
      running = false;
    },
    start,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        if (running) await exec('pg_ctl', ['stop', '-w', '-m', 'immediate', '-D', dataDir]);
      } finally {
        running = false;
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
