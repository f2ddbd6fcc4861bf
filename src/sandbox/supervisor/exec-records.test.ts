import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecRecords } from './exec-records.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'stowage-execs-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<{ offset: number; data: Buffer }>): Promise<{ offsets: number[]; text: string }> {
  const offsets: number[] = [];
  const parts: Buffer[] = [];
  for await (const piece of it) {
    offsets.push(piece.offset);
    parts.push(piece.data);
  }
  return { offsets, text: Buffer.concat(parts).toString() };
}

describe('exec records', () => {
  it('keep output with offsets, and a follower sees it live, then the end', async () => {
    const records = new ExecRecords(join(root, 'a'));
    const log = records.create({ id: 'e1', argv: ['echo', 'hi'], background: false, pty: false });
    log.update({ pid: 42 });
    const followed = collect(records.follow('e1', 'stdout', 0));
    assert.equal(log.append('stdout', Buffer.from('hello ')), 6);
    await new Promise((r) => setImmediate(r));
    assert.equal(log.append('stdout', Buffer.from('world')), 11);
    log.append('stderr', Buffer.from('warn'));
    log.update({ status: 'exited', exitCode: 0, endedAt: new Date().toISOString() });
    const { text } = await followed;
    assert.equal(text, 'hello world');
    assert.equal(records.read('e1', 'stdout', 6).toString(), 'world', 'a client re-attaches from an offset');
    assert.equal(records.read('e1', 'stdout', 11).length, 0);
    const r = records.get('e1')!;
    assert.equal(r.status, 'exited');
    assert.equal(r.exitCode, 0);
    assert.equal(r.pid, 42);
    assert.equal(r.stdoutBytes, 11);
    assert.equal(r.stderrBytes, 4);
  });

  it('outlive the supervisor: another instance lists them, reads them, and marks the unfinished as lost', async () => {
    const dir = join(root, 'b');
    const first = new ExecRecords(dir);
    first.create({ id: 'done', argv: ['true'], background: false, pty: false }).update({ status: 'exited', exitCode: 0 });
    first.create({ id: 'cut', argv: ['sleep', '99'], background: true, pty: false }).append('stdout', Buffer.from('partial'));
    const second = new ExecRecords(dir);
    assert.deepEqual(second.list().map((r) => [r.id, r.status]), [['done', 'exited'], ['cut', 'running']]);
    const lost = second.markLost('the sandbox stopped');
    assert.deepEqual(lost.map((r) => r.id), ['cut']);
    const cut = second.get('cut')!;
    assert.equal(cut.status, 'failed');
    assert.equal(cut.error, 'the sandbox stopped');
    assert.equal(cut.stdoutBytes, 7, 'byte counts come from the kept files');
    assert.equal((await collect(second.follow('cut', 'stdout', 3))).text, 'tial', 'a finished exec is read to its end and the follow stops');
  });

  it('bound what a sandbox can make the host keep', () => {
    const records = new ExecRecords(join(root, 'c'), 10);
    const log = records.create({ id: 'flood', argv: ['yes'], background: false, pty: false });
    log.append('stdout', Buffer.alloc(8, 'a'));
    log.append('stdout', Buffer.alloc(8, 'b'));
    log.update({ status: 'exited', exitCode: 0 });
    const r = records.get('flood')!;
    assert.equal(r.stdoutBytes, 10);
    assert.equal(r.dropped.stdout, 6);
    assert.equal(records.read('flood', 'stdout', 0).toString(), 'aaaaaaaabb');
  });

  it('refuse ids that are not plain names, ids in use, and offsets that are not offsets', async () => {
    const records = new ExecRecords(join(root, 'd'));
    for (const id of ['../x', '', 'A', 'a/b', '.', 'x'.repeat(65), '-x']) {
      assert.throws(() => records.create({ id, argv: ['true'], background: false, pty: false }), /exec id/, id);
      assert.equal(records.get(id), undefined);
    }
    records.create({ id: 'same', argv: ['true'], background: false, pty: false });
    assert.throws(() => records.create({ id: 'same', argv: ['true'], background: false, pty: false }), /EEXIST/);
    assert.throws(() => records.read('same', 'stdout', -1), /offset/);
    assert.throws(() => records.read('../same', 'stdout', 0), /no such exec/);
    assert.deepEqual(await readdir(join(root, 'd', 'execs')), ['same'], 'nothing was made outside the records folder');
  });
});
