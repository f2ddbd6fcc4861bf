/**
 * @module test/sandbox-execs.test
 * Durable execs end to end, outside a sandbox: the supervisor's exec service
 * over a real agent process, writing real record files. A second records
 * instance (a restarted daemon) reads and follows what the first wrote.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/sandbox/protocol/agent-client.js';
import { ExecRecords } from '../src/sandbox/supervisor/exec-records.js';
import { ExecService } from '../src/sandbox/supervisor/exec-service.js';

const AGENT_MAIN = fileURLToPath(new URL('../src/sandbox/agent/agent-main.js', import.meta.url));

let dir: string;
let child: ChildProcess;
let agent: AgentClient;
let records: ExecRecords;
let execs: ExecService;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-execs-e2e-'));
  child = spawn(process.execPath, [AGENT_MAIN], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  agent = new AgentClient(child.stdio[3] as Duplex);
  await agent.ready;
  records = new ExecRecords(dir);
  execs = new ExecService(agent, records);
});

after(async () => {
  agent?.close('test over');
  child?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('durable execs', () => {
  it('record a command, its output with offsets and its exit', async () => {
    const started = await execs.exec({ argv: ['sh', '-c', 'echo one; sleep 0.2; echo two >&2; exit 4'] });
    assert.equal(started.status, 'running');
    assert.ok(started.pid! > 0);
    const ended = await execs.wait(started.id);
    assert.equal(ended?.status, 'exited');
    assert.equal(ended?.exitCode, 4);
    assert.equal(records.read(started.id, 'stdout', 0).toString(), 'one\n');
    assert.equal(records.read(started.id, 'stderr', 0).toString(), 'two\n');
  });

  it('let another reader (a restarted daemon) follow a running exec from an offset', async () => {
    const started = await execs.exec({ argv: ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.1; done'] });
    const later = new ExecRecords(dir);
    const seen: string[] = [];
    for await (const { data } of records.follow(started.id, 'stdout', 0)) seen.push(data.toString());
    assert.equal(seen.join(''), 'line1\nline2\nline3\n');
    assert.equal(later.read(started.id, 'stdout', 6).toString(), 'line2\nline3\n');
    assert.equal(later.get(started.id)?.status, 'exited');
  });

  it('kill a timed-out foreground command, but give background commands no default timeout', async () => {
    const timed = await execs.exec({ argv: ['sleep', '30'], timeoutMs: 200 });
    const ended = await execs.wait(timed.id);
    assert.equal(ended?.timedOut, true);
    assert.equal(ended?.signal, 'SIGKILL');
    const bg = await execs.exec({ argv: ['sleep', '30'], background: true });
    assert.equal(bg.timeoutMs, undefined, 'a background exec has no timeout unless asked');
    const fg = await execs.exec({ argv: ['true'] });
    assert.ok((fg.timeoutMs ?? 0) > 0, 'a foreground exec has the default timeout');
    assert.ok(execs.signal(bg.id, 'SIGKILL'));
    assert.equal((await execs.wait(bg.id))?.signal, 'SIGKILL');
  });

  it('record a command that cannot start as failed, with the reason', async () => {
    const r = await execs.exec({ argv: ['/no/such/binary'] });
    assert.equal(r.status, 'failed');
    assert.match(r.error ?? '', /no\/such\/binary/);
    assert.equal(records.get(r.id)?.status, 'failed');
    await assert.rejects(execs.exec({ argv: [] }), TypeError);
    await assert.rejects(execs.exec({ argv: ['a\0b'] }), /NUL/);
  });

  it('mark running execs failed when the agent goes away', async () => {
    const r = await execs.exec({ argv: ['sleep', '30'], background: true });
    child.kill('SIGKILL');
    const ended = await execs.wait(r.id);
    assert.equal(ended?.status, 'failed');
    assert.match(ended?.error ?? '', /agent is gone/);
  });
});
