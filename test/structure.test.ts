/**
 * Structure rules that review alone does not keep, over both source trees
 * (the server package's src/ and the SDK package's packages/sdk/src/): no
 * import cycles (a circle means two modules are one module in two files, or
 * a type lives in the wrong place), no source file over 500 lines
 * (conformance suites aside), and an SDK that reaches nothing but Node, itself and its
 * declared dependencies.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bareImports, findCycles, importGraph } from './helpers/import-graph.js';

// dist/test/structure.test.js -> the repository's source trees (the .ts sources, not the build).
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const SDK_DIR = fileURLToPath(new URL('../../packages/sdk/', import.meta.url));
const SDK_SRC = join(SDK_DIR, 'src');
const TREES = [
  { name: 'src/', root: SRC },
  { name: 'packages/sdk/src/', root: SDK_SRC },
];

/** Most lines a source file may have. */
const MAX_LINES = 500;

describe('structure of the source trees', () => {
  for (const { name, root } of TREES) {
    it(`${name} has no import cycles`, () => {
      const graph = importGraph(root);
      assert.ok(graph.size > 20, `expected the sources under ${root}, found ${graph.size} files`);
      const cycles = findCycles(graph);
      assert.deepEqual(
        cycles.map((c) => c.join(' -> ')),
        [],
        `import cycles in ${name}:\n${cycles.map((c) => '  ' + c.join(' -> ')).join('\n')}`,
      );
    });

    it(`${name} reaches no file outside itself by a relative path (no test helpers, no other package)`, () => {
      const outside = [...importGraph(root)].flatMap(([file, deps]) =>
        deps.filter((d) => d.startsWith('..')).map((d) => `${file} -> ${d}`),
      );
      assert.deepEqual(outside, [], `${name} must import other trees by package name, and never test/`);
    });

    it(`${name} has no source file over ${MAX_LINES} lines but conformance suites`, () => {
      const long = [...importGraph(root).keys()]
        .filter((f) => !f.endsWith('.conformance.ts'))
        .map((f) => ({ f, lines: readFileSync(join(root, f), 'utf8').split('\n').length - 1 }))
        .filter(({ lines }) => lines > MAX_LINES);
      assert.deepEqual(
        long.map(({ f, lines }) => `${f}: ${lines} lines`),
        [],
        'split these files into modules with one job each',
      );
    });
  }

  it('the SDK imports only Node built-ins, its own files and the dependencies its package.json declares', () => {
    const pkg = JSON.parse(readFileSync(join(SDK_DIR, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    // Its own name too: a doc example imports the package as a user would.
    const runtime = new Set([pkg.name, ...Object.keys(pkg.dependencies ?? {})]);
    const forTests = new Set(Object.keys(pkg.devDependencies ?? {}));
    const strays: string[] = [];
    for (const file of importGraph(SDK_SRC).keys()) {
      const allowed = file.endsWith('.test.ts') ? new Set([...runtime, ...forTests]) : runtime;
      for (const spec of bareImports(readFileSync(join(SDK_SRC, file), 'utf8'))) {
        if (spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!allowed.has(name)) strays.push(`${file} imports ${spec}`);
      }
    }
    assert.deepEqual(strays, [], 'the SDK must not reach the server package or an undeclared dependency');
    for (const [dep] of Object.entries(pkg.dependencies ?? {})) {
      assert.ok(
        !['better-sqlite3', 'pg', 'kysely', 'hono', '@aws-sdk/client-s3'].includes(dep),
        `the SDK depends on server-side ${dep}`,
      );
    }
  });

  it('the cycle finder finds a cycle, and the graph reader sees type-only and re-export imports', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts', 'd.ts']],
      ['d.ts', []],
    ]);
    assert.deepEqual(findCycles(graph), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    assert.deepEqual(findCycles(new Map([['x.ts', ['x.ts']]])), [['x.ts', 'x.ts']]);
    const engine = importGraph(SRC).get('engine/types.ts') ?? [];
    assert.ok(
      engine.includes('stores/blob-store.ts'),
      'engine/types.ts imports stores/blob-store.ts (an `import type`)',
    );
    assert.deepEqual(
      bareImports(
        "import type { A } from '@x/y/z.js';\nexport * from 'tar-stream';\nconst m = await import('node:fs');",
      ),
      ['@x/y/z.js', 'tar-stream', 'node:fs'],
    );
  });
});
