/**
 * @module test/sdk-package.test
 * The SDK as a user gets it: `npm pack` of packages/sdk, installed into an
 * empty project outside the repository with install scripts off, then a
 * round trip against a real server. Proves the tarball holds only the built
 * client (no tests, benches, conformance suites or source maps), that its
 * whole dependency tree needs no compiler (no install scripts, no native
 * addons) and reaches no server code, and that it works on its own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from './helpers/server.js';

const run = promisify(execFile);
// dist/test/sdk-package.test.js -> packages/sdk of the repository.
const SDK_DIR = fileURLToPath(new URL('../../packages/sdk/', import.meta.url));
/** Packages only a server needs: none may land in an SDK user's tree. */
const SERVER_ONLY = [
  'better-sqlite3',
  'pg',
  'kysely',
  'hono',
  '@hono/node-server',
  '@aws-sdk/client-s3',
  '@tus/server',
  'stowage',
];
const INSTALL_HOOKS = ['preinstall', 'install', 'postinstall'];

let srv: TestServer;
let work: string;
let app: string;
let packed: { filename: string; files: { path: string }[] };

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

before(async () => {
  srv = await startTestServer();
  work = await mkdtemp(join(tmpdir(), 'stowage-sdk-package-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: SDK_DIR });
  [packed] = JSON.parse(stdout) as (typeof packed)[];
  app = join(work, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'sdk-user', private: true, type: 'module' }));
  // --prefer-offline: npm ci of the repository cached these tarballs; the registry is asked only on a miss.
  await run(
    'npm',
    ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed.filename)],
    { cwd: app },
  );
});

after(async () => {
  await srv?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the @stowage/sdk package', () => {
  test('its tarball holds the built client and nothing else', () => {
    const paths = packed.files.map((f) => f.path);
    assert.ok(
      paths.includes('dist/index.js') && paths.includes('dist/index.d.ts'),
      `no entry point in ${paths.join(', ')}`,
    );
    assert.ok(paths.includes('dist/client/volume.js'), 'the client modules are packed');
    const strays = paths.filter(
      (p) =>
        !(p === 'package.json' || /^(README|LICENSE)/.test(p) || p.startsWith('dist/')) ||
        /\.test\.|conformance|bench|\.map$|\.node$|\.ts$(?<!\.d\.ts)/.test(p),
    );
    assert.deepEqual(
      strays,
      [],
      'the SDK tarball must hold only dist/ (no tests, benches, conformance suites, maps or sources)',
    );
  });

  test('its whole dependency tree installs without a compiler and without server code', () => {
    const modules = join(app, 'node_modules');
    const files = filesUnder(modules);
    assert.ok(files.includes('@stowage/sdk/dist/index.js'), 'the SDK was installed');
    assert.deepEqual(
      files.filter((f) => f.endsWith('.node') || f.endsWith('binding.gyp')),
      [],
      'native addons in the SDK tree',
    );
    const manifests = files.filter((f) => f.endsWith('package.json') && !f.includes('/test/'));
    const hooks: string[] = [];
    for (const m of manifests) {
      const pkg = JSON.parse(readFileSync(join(modules, m), 'utf8')) as {
        name?: string;
        scripts?: Record<string, string>;
        gypfile?: boolean;
      };
      for (const hook of INSTALL_HOOKS) if (pkg.scripts?.[hook]) hooks.push(`${m}: ${hook}: ${pkg.scripts[hook]}`);
      if (pkg.gypfile) hooks.push(`${m}: gypfile`);
    }
    assert.deepEqual(hooks, [], 'install scripts in the SDK tree');
    const present = SERVER_ONLY.filter((name) => existsSync(join(modules, name)));
    assert.deepEqual(present, [], 'server-side packages in the SDK tree');
  });

  test('a program that imports only the installed SDK does a round trip against a server', async () => {
    await writeFile(
      join(app, 'round-trip.mjs'),
      `import { Stowage, Volume, NotFoundError } from '@stowage/sdk';
const stowage = Stowage.fromEnv();
const vol = await Volume.get('from-the-package', { mintIfMissing: true, client: stowage });
await vol.files.write('/hello.txt', 'hello from npm pack\\n');
const text = (await vol.files.read('/hello.txt')).toString();
const listed = (await vol.files.list('/')).map((f) => f.path);
let missing = '';
try { await vol.files.read('/nope'); } catch (e) { missing = e instanceof NotFoundError ? 'NotFound' : String(e); }
console.log(JSON.stringify({ text, listed, missing, resolved: import.meta.resolve('@stowage/sdk') }));
`,
    );
    const { stdout } = await run(process.execPath, ['round-trip.mjs'], {
      cwd: app,
      env: { ...process.env, STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token },
    });
    const out = JSON.parse(stdout) as { text: string; listed: string[]; missing: string; resolved: string };
    assert.equal(out.text, 'hello from npm pack\n');
    assert.deepEqual(out.listed, ['/hello.txt']);
    assert.equal(out.missing, 'NotFound');
    assert.ok(
      out.resolved.startsWith(`file://${app}/node_modules/@stowage/sdk/`),
      `resolved from the repository, not the install: ${out.resolved}`,
    );
  });
});
