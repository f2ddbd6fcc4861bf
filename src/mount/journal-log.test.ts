/**
 * The journal log over real files: records survive a reopen in order; a
 * torn or corrupt tail (a machine crash) is cut off with everything after
 * it and appending goes on from there; a log of another epoch is stale and
 * starts empty; and the overlay store moves an older agent's journal (rows
 * of its database) into the log without losing or repeating a record, and
 * keeps the data files the journal names across a restart. Spare data
 * files are made ahead, taken once each, deleted by a reset and by the
 * sweep of a restart when unused.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JournalLog } from './journal-log.js';
import { OverlayStore, type JournalOp } from './overlay-store.js';

describe('JournalLog', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-journal-'));
    path = join(dir, 'journal.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const fill = (n: number, epoch = 'e1'): void => {
    const log = JournalLog.open<{ n: number; name: string }>(path, epoch);
    for (let i = 0; i < n; i++) log.append({ n: i, name: `file ${i} \n "quoted" ✓` });
    log.close();
  };

  it('keeps records in order across a reopen, names with newlines and non-ASCII included', () => {
    fill(100);
    const log = JournalLog.open<{ n: number; name: string }>(path, 'e1');
    assert.equal(log.length, 100);
    const records = log.records();
    assert.deepEqual(
      records.map((r) => r.n),
      [...Array(100).keys()],
    );
    assert.equal(records[7]!.name, 'file 7 \n "quoted" ✓');
    log.close();
  });

  it('cuts off a torn last line and appends after the last whole record', () => {
    fill(10);
    const size = readFileSync(path).length;
    truncateSync(path, size - 5); // the last write stopped half way
    const log = JournalLog.open<{ n: number }>(path, 'e1');
    assert.equal(log.length, 9);
    log.append({ n: 99 });
    assert.deepEqual(
      log.records().map((r) => r.n),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 99],
    );
    log.close();
  });

  it('drops a corrupt record and everything after it (a zeroed block, a flipped byte)', () => {
    fill(5);
    appendFileSync(path, Buffer.alloc(512)); // zeros where a crash left unwritten blocks
    appendFileSync(path, '00000000 {"n":1000}\n'); // a well-formed line after them is not trusted either
    let log = JournalLog.open<{ n: number }>(path, 'e1');
    assert.equal(log.length, 5);
    log.close();
    const text = readFileSync(path, 'utf8').replace('"n":3', '"n":4'); // the checksum no longer matches
    writeFileSync(path, text);
    log = JournalLog.open<{ n: number }>(path, 'e1');
    assert.deepEqual(
      log.records().map((r) => r.n),
      [0, 1, 2],
    );
    log.close();
  });

  it('starts empty when the log is of another epoch, has no header, or is garbage', () => {
    fill(5, 'old');
    let log = JournalLog.open(path, 'new');
    assert.equal(log.length, 0);
    assert.deepEqual(log.records(), []);
    log.close();
    writeFileSync(path, 'not a journal at all\n{"n":1}\n');
    log = JournalLog.open(path, 'new');
    assert.equal(log.length, 0);
    log.close();
  });

  it('restart empties the log under a new epoch; reopening with the old epoch finds nothing', () => {
    const log = JournalLog.open<{ n: number }>(path, 'e1');
    log.append({ n: 1 });
    log.restart('e2');
    log.append({ n: 2 });
    log.close();
    assert.deepEqual(JournalLog.open<{ n: number }>(path, 'e2').records(), [{ n: 2 }]);
    assert.equal(JournalLog.open(path, 'e1').length, 0);
  });
});

describe('OverlayStore journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-overlay-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("moves an older agent's journal rows into the log once, in order", () => {
    const ops: JournalOp[] = [
      { op: 'mkdir', path: '/a', mode: 0o755 },
      { op: 'create', path: '/a/f', mode: 0o644, dataId: 'd1' },
      { op: 'rename', from: '/a/f', to: '/a/g' },
    ];
    OverlayStore.open(dir).close(); // the schema
    const db = new Database(join(dir, 'overlay.db'));
    db.prepare("DELETE FROM meta WHERE key = 'journal.epoch'").run();
    for (const op of ops) db.prepare('INSERT INTO journal (op) VALUES (?)').run(JSON.stringify(op));
    db.close();
    writeFileSync(join(dir, 'data', 'd1'), 'bytes');

    let store = OverlayStore.open(dir);
    assert.deepEqual(store.journal(), ops);
    store.append({ op: 'chmod', path: '/a/g', mode: 0o600 });
    store.close();
    store = OverlayStore.open(dir);
    assert.deepEqual(store.journal(), [...ops, { op: 'chmod', path: '/a/g', mode: 0o600 }], 'moved once, not again');
    assert.ok(existsSync(join(dir, 'data', 'd1')), 'the data file the journal names survives the restart sweep');
    store.close();
  });

  it('a reset survives a crash between the database and the log: the old journal is not replayed', () => {
    let store = OverlayStore.open(dir);
    store.append({ op: 'mkdir', path: '/x', mode: 0o755 });
    store.close();
    const before = readFileSync(join(dir, 'journal.log'));
    store = OverlayStore.open(dir);
    store.reset('commit-2');
    store.close();
    writeFileSync(join(dir, 'journal.log'), before); // as if the log's restart never reached the disk
    store = OverlayStore.open(dir);
    assert.deepEqual(store.journal(), []);
    assert.equal(store.getMeta('base'), 'commit-2');
    store.close();
  });

  it('makes spare data files ahead: each taken once, empty, gone after a reset and after a restart when unused', async () => {
    let store = OverlayStore.open(dir, { spares: true });
    assert.equal(store.takeSpare(), undefined, 'none before the first ask');
    store.refillSpares();
    const data = join(dir, 'data');
    await store.settle();
    assert.equal(readdirSync(data).length, 32);
    const taken = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const id = store.takeSpare();
      assert.ok(id !== undefined && !taken.has(id), 'a fresh spare each time');
      taken.add(id);
      assert.equal(statSync(store.dataPath(id)).size, 0);
    }
    const used = [...taken][0]!;
    store.append({ op: 'create', path: '/used', mode: 0o644, dataId: used });
    await store.settle();
    store.close();
    store = OverlayStore.open(dir, { spares: true });
    assert.deepEqual(readdirSync(data), [used], 'the restart swept every spare nothing names');
    store.refillSpares();
    await sleep(1); // some spares made, some still in flight when the reset comes
    store.reset('commit-3');
    await store.settle();
    assert.deepEqual(
      readdirSync(data),
      [],
      'a reset deletes spares with the rest, made before it or finishing after it',
    );
    store.close();
  });
});
