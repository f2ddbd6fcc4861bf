/**
 * Structure rules of src/ that review alone does not keep: no import cycles
 * (a circle means two modules are one module in two files, or a type lives
 * in the wrong place).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { findCycles, importGraph } from './helpers/import-graph.js';

// dist/test/structure.test.js -> the repository's src/ (the .ts sources, not the build).
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

describe('structure of src/', () => {
  it('has no import cycles', () => {
    const graph = importGraph(SRC);
    assert.ok(graph.size > 50, `expected the sources under ${SRC}, found ${graph.size} files`);
    const cycles = findCycles(graph);
    assert.deepEqual(cycles.map((c) => c.join(' -> ')), [], `import cycles in src/:\n${cycles.map((c) => '  ' + c.join(' -> ')).join('\n')}`);
  });

  it('the cycle finder finds a cycle, and the graph reader sees type-only and re-export imports', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts', 'd.ts']], ['d.ts', []],
    ]);
    assert.deepEqual(findCycles(graph), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    assert.deepEqual(findCycles(new Map([['x.ts', ['x.ts']]])), [['x.ts', 'x.ts']]);
    const engine = importGraph(SRC).get('engine/types.ts') ?? [];
    assert.ok(engine.includes('common/ids.ts'), 'engine/types.ts imports common/ids.ts (an `import type`)');
  });
});
