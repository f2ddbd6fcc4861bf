/**
 * @module test/sandbox-agent.test
 * The sandbox agent as a real process talking to the supervisor's client
 * over a real socket (file descriptor 3, as inside a sandbox), outside any
 * sandbox: commands, process groups and timeouts, stdin, files, and a peer
 * that breaks the protocol.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentCallError, AgentClient, type ExecExit } from '../src/sandbox/protocol/agent-client.js';
import { encodeFrame } from '../src/sandbox/protocol/frames.js';

const AGENT_MAIN = fileURLToPath(new URL('../src/sandbox/agent/agent-main.js', import.meta.url));

let child: ChildProcess;
let agent: AgentClient;
let dir: string;
let seq = 0;

/** Runs a command to its end; returns its output and exit. */
async function run(argv: string[], options: { timeoutMs?: number; stdin?: Buffer; cwd?: string } = {}): Promise<{ stdout: string; stderr: string; exit: ExecExit }> {
  const id = `e${++seq}`;
  const out: Record<1 | 2, Buffer[]> = { 1: [], 2: [] };
  const onOut = (eid: string, fd: 1 | 2, data: Buffer): void => {
    if (eid === id) out[fd].push(data);
  };
  agent.on('out', onOut);
  const exited = new Promise<ExecExit>((resolve) => {
    const onExit = (eid: string, exit: ExecExit): void => {
      if (eid !== id) return;
      agent.off('exit', onExit);
      resolve(exit);
    };
    agent.on('exit', onExit);
  });
  try {
    await agent.exec({ id, argv, stdin: options.stdin !== undefined, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) });
    if (options.stdin) {
      agent.stdin(id, options.stdin);
      agent.endStdin(id);
    }
    const exit = await exited;
    return { stdout: Buffer.concat(out[1]).toString(), stderr: Buffer.concat(out[2]).toString(), exit };
  } finally {
    agent.off('out', onOut);
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-agent-'));
  child = spawn(process.execPath, [AGENT_MAIN], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  agent = new AgentClient(child.stdio[3] as Duplex);
});

after(async () => {
  agent?.close('test over');
  child?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the sandbox agent', () => {
  it('says it is ready with its protocol version and pid', async () => {
    const ready = await agent.ready;
    assert.equal(ready.version, 1);
    assert.equal(ready.pid, child.pid);
  });

  it('runs a command, streams its output and reports its exit code', async () => {
    const r = await run(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.deepEqual(r.exit, { code: 3, signal: null, timedOut: false });
    const big = await run(['sh', '-c', 'head -c 3000000 /dev/zero']);
    assert.equal(big.stdout.length, 3_000_000, 'output larger than a frame arrives whole');
  });

  it('refuses a command that does not exist with ENOENT', async () => {
    await assert.rejects(agent.exec({ id: 'missing', argv: ['/no/such/command'] }), (e: AgentCallError) => e.code === 'ENOENT' && /no\/such\/command/.test(e.message));
  });

  it('kills the whole process group on timeout', async () => {
    const pidFile = join(dir, 'bg.pid');
    const r = await run(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; sleep 30`], { timeoutMs: 300 });
    assert.equal(r.exit.timedOut, true);
    assert.equal(r.exit.signal, 'SIGKILL');
    const bg = Number((await readFile(pidFile, 'utf8')).trim());
    await sleep(100);
    // Gone, or a zombie its new parent has not reaped yet (this host's init reaps slowly).
    const state = await readFile(`/proc/${bg}/stat`, 'utf8').then((t) => t.slice(t.lastIndexOf(')') + 2, t.lastIndexOf(')') + 3), () => 'gone');
    assert.ok(state === 'gone' || state === 'Z', `the background child of a timed-out command is killed too (state ${state})`);
  });

  it('does not wait for children a finished command left behind', async () => {
    const started = Date.now();
    const r = await run(['sh', '-c', 'sleep 5 & echo done']);
    assert.equal(r.stdout, 'done\n');
    assert.equal(r.exit.code, 0);
    assert.ok(Date.now() - started < 4000, 'the exit was reported before the left-behind sleep ended');
  });

  it('feeds stdin and signals a running command', async () => {
    const r = await run(['cat'], { stdin: Buffer.from('piped in\n') });
    assert.equal(r.stdout, 'piped in\n');
    const id = 'signalled';
    const exited = new Promise<ExecExit>((resolve) => agent.on('exit', (eid, exit) => eid === id && resolve(exit)));
    await agent.exec({ id, argv: ['sleep', '30'] });
    agent.signal(id, 'SIGTERM');
    assert.deepEqual(await exited, { code: null, signal: 'SIGTERM', timedOut: false });
  });

  it('writes, reads, stats, lists and removes files with the mode asked for', async () => {
    const path = join(dir, 'a/b/c.txt');
    assert.deepEqual(await agent.writeFile(path, Buffer.from('hello')), { size: 5 });
    assert.equal((await agent.readFile(path)).toString(), 'hello');
    assert.equal((await agent.stat(path)).mode, 0o644, 'writes default to 0o644');
    await agent.writeFile(path, Buffer.alloc(2_500_000, 1), { mode: 0o600 });
    const st = await agent.stat(path);
    assert.equal(st.size, 2_500_000);
    assert.equal(st.mode, 0o600);
    assert.equal((await agent.readFile(path)).length, 2_500_000);
    const listing = await agent.list(join(dir, 'a/b'));
    assert.deepEqual(listing.entries.map((e) => [e.name, e.type]), [['c.txt', 'file']], 'no temp file is left beside it');
    await agent.mkdir(join(dir, 'x/y'));
    assert.equal((await agent.stat(join(dir, 'x/y'))).type, 'directory');
    await agent.remove(join(dir, 'a'), true);
    await assert.rejects(agent.stat(path), (e: AgentCallError) => e.code === 'ENOENT');
  });

  it('refuses relative paths, missing parents without createParents, directories as files, and oversize reads', async () => {
    await assert.rejects(agent.stat('etc/passwd'), (e: AgentCallError) => e.code === 'EINVAL' && /absolute/.test(e.message));
    await assert.rejects(agent.writeFile(join(dir, 'nope/f'), Buffer.from('x'), { createParents: false }), (e: AgentCallError) => e.code === 'ENOENT');
    await assert.rejects(agent.writeFile(dir, Buffer.from('x')), (e: AgentCallError) => e.code === 'EISDIR');
    await assert.rejects(agent.readFile(dir), (e: AgentCallError) => e.code === 'EISDIR');
    await assert.rejects(agent.remove('/'), (e: AgentCallError) => e.code === 'EPERM');
    await writeFile(join(dir, 'big'), Buffer.alloc(2000));
    await assert.rejects(agent.readFile(join(dir, 'big'), 1000), (e: AgentCallError) => e.code === 'EFBIG');
    assert.equal(agent.closedReason, undefined, 'refusals leave the link up');
  });
});

describe('the supervisor side of the link, against an agent that breaks the protocol', () => {
  /** A client whose "agent" is the test: bytes written to `fromAgent` reach the client. */
  function fake(): { client: AgentClient; fromAgent: (b: Buffer) => void } {
    const link = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    return { client: new AgentClient(link), fromAgent: (b) => link.push(b) };
  }

  it('closes the link on garbage and fails every pending call', async () => {
    const { client, fromAgent } = fake();
    const pending = client.stat('/x');
    fromAgent(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await assert.rejects(pending, (e: AgentCallError) => e.code === 'ECONNRESET' && /protocol/.test(e.message));
    await assert.rejects(client.ready);
  });

  it('closes the link on an event of the wrong shape or an answer nobody asked for', async () => {
    for (const header of [{ ev: 'exit', id: 'x'.repeat(500), code: 0, signal: null, timedOut: false }, { ev: 'out', id: 'x', fd: 7 }, { rid: 99, ok: true }, { ev: 'mystery' }]) {
      const { client, fromAgent } = fake();
      fromAgent(encodeFrame(header));
      await sleep(5);
      assert.match(client.closedReason ?? '', /broke the protocol/, JSON.stringify(header));
    }
  });

  it('closes the link on a result of the wrong shape', async () => {
    const { client, fromAgent } = fake();
    const pending = client.stat('/x');
    fromAgent(encodeFrame({ rid: 1, ok: true }, Buffer.from(JSON.stringify({ name: '/x', type: 'file', size: -1, mode: 0, mtimeMs: 0, uid: 0, gid: 0 }))));
    await assert.rejects(pending, (e: AgentCallError) => e.code === 'EPROTO');
    assert.match(client.closedReason ?? '', /malformed result/);
  });
});
