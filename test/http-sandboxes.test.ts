/**
 * /v1/sandboxes over real HTTP on loopback, with the in-memory runtime (the
 * real runtime has its own tests): records, execs with server-sent output
 * re-attached from offsets, raw stdin, raw file bytes both ways, the bounds
 * of raw bodies, bad paths, tenants, and the answers of a server that cannot
 * run sandboxes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Sandbox, Stowage } from '@stowage/sdk';
import type * as wire from '@stowage/sdk/api/wire.js';
import { PayloadTooLargeError } from '@stowage/sdk/common/errors.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeSandboxRuntime } from '../src/engine/fake-sandbox-runtime.test-helper.js';
import { startServer } from '../src/server/serve.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const FILE_LIMIT = 256 * 1024;
const JSON_LIMIT = 4 * 1024;

interface SseEvent {
  event: string;
  data: string;
}

/** The events of a text/event-stream body, as they arrive. */
async function* sse(res: Response): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

/** Every output byte of each stream and the exit record, reading the stream to its end. */
async function collect(res: Response): Promise<{ stdout: Buffer; stderr: Buffer; offsets: number[]; exit: wire.Exec }> {
  const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const offsets: number[] = [];
  for await (const ev of sse(res)) {
    if (ev.event === 'exit') {
      return {
        stdout: Buffer.concat(out.stdout),
        stderr: Buffer.concat(out.stderr),
        offsets,
        exit: JSON.parse(ev.data),
      };
    }
    assert.equal(ev.event, 'output', ev.data);
    const o = JSON.parse(ev.data) as wire.ExecOutputEvent;
    offsets.push(o.offset);
    out[o.stream].push(Buffer.from(o.data, 'base64'));
  }
  throw new Error('the stream ended without an exit event');
}

describe('HTTP /v1/sandboxes', () => {
  let srv: TestServer;
  let rt: FakeSandboxRuntime;

  before(async () => {
    rt = new FakeSandboxRuntime('test-host');
    srv = await startTestServer({
      sandboxRuntime: rt,
      limits: { sandboxFileBytes: FILE_LIMIT, jsonBodyBytes: JSON_LIMIT },
    });
  });
  after(async () => {
    await srv?.close();
  });

  const call = (
    method: string,
    path: string,
    init: { json?: unknown; body?: string | Uint8Array; token?: string; headers?: Record<string, string> } = {},
  ) =>
    fetch(`${srv.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${init.token ?? srv.token}`,
        ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.json !== undefined
        ? { body: JSON.stringify(init.json) }
        : init.body !== undefined
          ? { body: init.body }
          : {}),
    });
  const json = async <T>(res: Response, status: number): Promise<T> => {
    const text = await res.text();
    assert.equal(res.status, status, text);
    return JSON.parse(text) as T;
  };
  const errorOf = async (res: Response, status: number) =>
    (await json<{ error: { code: string; message: string } }>(res, status)).error;
  const create = async (req: wire.CreateSandboxRequest = {}) =>
    json<wire.Sandbox>(await call('POST', '/v1/sandboxes', { json: { image: { base: 'busybox' }, ...req } }), 201);

  it('creates, lists, gets and terminates; env values are never echoed, volumes carry their attachment', async () => {
    await json(await call('POST', '/v1/volumes', { json: { name: 'nb' } }), 201);
    const sb = await create({
      env: { API_KEY: 'hunter2', B: 'x' },
      volumes: { '/mnt/nb': 'nb' },
      cpu: 0.5,
      timeout: 60,
    });
    assert.equal(sb.status, 'running');
    assert.deepEqual(sb.envNames, ['API_KEY', 'B']);
    assert.ok(!JSON.stringify(sb).includes('hunter2'), 'the value of an env var is not in the answer');
    assert.equal(sb.host, 'test-host');
    assert.deepEqual([sb.cpu, sb.timeout, sb.memoryMib, sb.diskGib], [0.5, 60, 1024, 4]);
    assert.equal(sb.volumes[0]!.path, '/mnt/nb');
    assert.match(sb.volumes[0]!.attachmentId, /^att_/);
    const atts = await json<wire.AttachmentList>(await call('GET', '/v1/volumes/nb/attachments'), 200);
    assert.deepEqual(
      atts.attachments.map((a) => a.host),
      [`sandbox:${sb.id}`],
    );
    assert.ok(!JSON.stringify(await json(await call('GET', `/v1/sandboxes/${sb.id}`), 200)).includes('hunter2'));

    const list = await json<wire.SandboxList>(await call('GET', '/v1/sandboxes'), 200);
    assert.equal(list.sandboxes[0]!.id, sb.id);
    const done = await json<wire.Sandbox>(await call('POST', `/v1/sandboxes/${sb.id}/terminate`), 200);
    assert.deepEqual([done.status, done.reason], ['terminated', 'terminated by request']);
    assert.ok(done.endedAt);
    assert.deepEqual(await json(await call('POST', `/v1/sandboxes/${sb.id}/terminate`), 200), done);
    const live = await json<wire.SandboxList>(await call('GET', '/v1/sandboxes'), 200);
    assert.ok(!live.sandboxes.some((s) => s.id === sb.id));
    const all = await json<wire.SandboxList>(await call('GET', '/v1/sandboxes?all=true'), 200);
    assert.ok(all.sandboxes.some((s) => s.id === sb.id));
    const after = await json<wire.AttachmentList>(await call('GET', '/v1/volumes/nb/attachments'), 200);
    assert.deepEqual(after.attachments, [], 'the attachment was released');
    const e = await errorOf(await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { argv: ['echo'] } }), 409);
    assert.match(e.message, new RegExp(`sandbox ${sb.id} is terminated`));
  });

  it("streams an exec's output as server-sent events, and re-attaches from offsets", async () => {
    const sb = await create();
    const exec = await json<wire.Exec>(
      await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { argv: ['printf-bytes', '100000'], timeout: 5 } }),
      201,
    );
    assert.equal(exec.sandboxId, sb.id);
    assert.equal(exec.timeout, 5);
    const base = `/v1/sandboxes/${sb.id}/execs/${exec.id}/output`;
    const res = await call('GET', base);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const whole = await collect(res);
    assert.deepEqual(whole.stdout, Buffer.alloc(100000, 'x'));
    assert.equal(whole.stderr.toString(), 'done\n');
    assert.ok(whole.offsets.length > 2, 'large output comes in several events');
    assert.deepEqual([whole.exit.status, whole.exit.exitCode, whole.exit.stdoutBytes], ['exited', 0, 100000]);
    const rest = await collect(await call('GET', `${base}?stdout=70000&stderr=5`));
    assert.equal(rest.stdout.length, 30000);
    assert.equal(rest.offsets[0], 70000);
    assert.equal(rest.stderr.length, 0);
    assert.equal((await errorOf(await call('GET', `${base}?stdout=-1`), 400)).code, 'InvalidArgument');
    assert.equal((await errorOf(await call('GET', `/v1/sandboxes/${sb.id}/execs/nope/output`), 404)).code, 'NotFound');
    const listed = await json<wire.ExecList>(await call('GET', `/v1/sandboxes/${sb.id}/execs`), 200);
    assert.deepEqual(
      listed.execs.map((x) => x.id),
      [exec.id],
    );
  });

  it('follows a running exec live: raw stdin (even JSON-typed, invalid UTF-8) arrives, end closes it', async () => {
    const sb = await create();
    const exec = await json<wire.Exec>(
      await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { command: 'cat', stdin: true } }),
      201,
    );
    assert.deepEqual(exec.argv, ['/bin/sh', '-c', 'cat']);
    const events = sse(await call('GET', `/v1/sandboxes/${sb.id}/execs/${exec.id}/output`));
    const stdin = `/v1/sandboxes/${sb.id}/execs/${exec.id}/stdin`;
    const raw = Buffer.from([0xff, 0xfe, 0x7b, 0x00]);
    const w = await call('POST', stdin, { body: raw, headers: { 'content-type': 'application/json' } });
    assert.equal(w.status, 204, await w.text());
    const first = (await events.next()).value as SseEvent;
    assert.equal(first.event, 'output');
    assert.deepEqual(Buffer.from((JSON.parse(first.data) as wire.ExecOutputEvent).data, 'base64'), raw);
    assert.equal((await call('POST', `${stdin}?end=true`, { body: 'bye' })).status, 204);
    const rest: SseEvent[] = [];
    for await (const ev of events) rest.push(ev);
    assert.deepEqual(
      rest.map((e) => e.event),
      ['output', 'exit'],
    );
    assert.equal((JSON.parse(rest[1]!.data) as wire.Exec).exitCode, 0);
    const other = await json<wire.Exec>(
      await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { argv: ['cat'], stdin: true } }),
      201,
    );
    const flood = async function* () {
      for (let i = 0; i < 9; i++) yield new Uint8Array(1024 * 1024);
    };
    const big = await fetch(`${srv.url}/v1/sandboxes/${sb.id}/execs/${other.id}/stdin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.token}` },
      body: ReadableStream.from(flood()),
      duplex: 'half',
    } as RequestInit);
    assert.match((await errorOf(big, 413)).message, /at most 8388608 bytes/);
    const sleeper = await json<wire.Exec>(
      await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { argv: ['sleep', '1000'], background: true } }),
      201,
    );
    const sig = `/v1/sandboxes/${sb.id}/execs/${sleeper.id}/signal`;
    assert.equal(
      (await errorOf(await call('POST', sig, { json: { signal: 'SIGBOGUS' } }), 400)).code,
      'InvalidArgument',
    );
    assert.equal((await call('POST', sig, { json: { signal: 'SIGKILL' } })).status, 204);
    const got = await json<wire.Exec>(await call('GET', `/v1/sandboxes/${sb.id}/execs/${sleeper.id}`), 200);
    assert.equal(got.signal, 'SIGKILL');
  });

  it('stops reading the runtime when the client of an output stream goes away', async () => {
    const sb = await create();
    const exec = await json<wire.Exec>(
      await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { argv: ['cat'], stdin: true } }),
      201,
    );
    const before = rt.openOutputs;
    const abort = new AbortController();
    const res = await fetch(`${srv.url}/v1/sandboxes/${sb.id}/execs/${exec.id}/output`, {
      headers: { authorization: `Bearer ${srv.token}` },
      signal: abort.signal,
    });
    const events = sse(res);
    await call('POST', `/v1/sandboxes/${sb.id}/execs/${exec.id}/stdin`, { body: 'ping' });
    assert.equal(((await events.next()).value as SseEvent).event, 'output');
    assert.equal(rt.openOutputs, before + 1, 'the reader follows the running exec');
    abort.abort();
    await events.return(undefined).catch(() => undefined);
    const deadline = Date.now() + 5000;
    while (rt.openOutputs > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(rt.openOutputs, before, 'the reader stopped with its client');
    assert.equal(
      (await json<wire.Exec>(await call('GET', `/v1/sandboxes/${sb.id}/execs/${exec.id}`), 200)).status,
      'running',
    );
  });

  it('round-trips every byte value through PUT and GET of a file, and answers stat, list, mkdir, delete', async () => {
    const sb = await create();
    const bytes = Buffer.from(Array.from({ length: 256 * 4 }, (_, i) => i % 256));
    const files = `/v1/sandboxes/${sb.id}/files`;
    // Typed as JSON on purpose: the bytes must still reach the sandbox untouched.
    const put = await call('PUT', `${files}?path=/work/bin.dat&mode=600`, {
      body: bytes,
      headers: { 'content-type': 'application/json' },
    });
    const info = await json<wire.SandboxFileInfo>(put, 200);
    assert.deepEqual([info.name, info.type, info.size, info.mode], ['bin.dat', 'file', bytes.length, 0o600]);
    const get = await call('GET', `${files}?path=/work/bin.dat`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), bytes);
    // Larger than the JSON body limit: raw bodies are bounded by their own route only.
    const big = Buffer.alloc(JSON_LIMIT * 10, 7);
    assert.equal(
      (await json<wire.SandboxFileInfo>(await call('PUT', `${files}?path=/big`, { body: big }), 200)).size,
      big.length,
    );
    const stat = await json<wire.SandboxFileInfo>(await call('GET', `${files}/stat?path=/work`), 200);
    assert.equal(stat.type, 'directory');
    assert.equal((await call('POST', `${files}/mkdir`, { json: { path: '/work/sub', mode: 0o700 } })).status, 204);
    const list = await json<wire.SandboxFileList>(await call('GET', `${files}/list?path=/work`), 200);
    assert.deepEqual(
      list.entries.map((e) => [e.name, e.type]),
      [
        ['bin.dat', 'file'],
        ['sub', 'directory'],
      ],
    );
    assert.equal((await errorOf(await call('DELETE', `${files}?path=/work`), 409)).code, 'Conflict');
    assert.equal((await call('DELETE', `${files}?path=/work&recursive=true`)).status, 204);
    const gone = await errorOf(await call('GET', `${files}?path=/work/bin.dat`), 404);
    assert.match(gone.message, /\/work\/bin\.dat: no such file/);
    const noParent = await errorOf(await call('PUT', `${files}?path=/a/b&createParents=false`, { body: 'x' }), 404);
    assert.match(noParent.message, /\/a/);
  });

  it('refuses a file larger than the bound with 413, declared or streamed without a length', async () => {
    const sb = await create();
    const files = `/v1/sandboxes/${sb.id}/files`;
    const declared = await errorOf(await call('PUT', `${files}?path=/x`, { body: Buffer.alloc(FILE_LIMIT + 1) }), 413);
    assert.match(declared.message, new RegExp(`at most ${FILE_LIMIT} bytes`));
    const chunks = async function* () {
      for (let i = 0; i < 10; i++) yield new Uint8Array(64 * 1024);
    };
    const streamed = await fetch(`${srv.url}${files}?path=/y`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${srv.token}` },
      body: ReadableStream.from(chunks()),
      duplex: 'half',
    } as RequestInit);
    assert.equal((await errorOf(streamed, 413)).code, 'PayloadTooLarge');
    assert.equal(
      (await errorOf(await call('GET', `${files}/stat?path=/y`), 404)).code,
      'NotFound',
      'nothing was written',
    );
    // The SDK streams a Readable (node:http): the same refusal, as its error, and the rest is not read.
    const sdk = await Sandbox.connect(sb.id, { client: new Stowage({ url: srv.url, token: srv.token }) });
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled++;
        this.push(Buffer.alloc(64 * 1024));
      },
    });
    await assert.rejects(sdk.write('/z', endless), PayloadTooLargeError);
    assert.ok(pulled * 64 * 1024 < 64 * FILE_LIMIT, `read ${pulled} pieces of 64 KiB`);
    assert.equal((await errorOf(await call('GET', `${files}/stat?path=/z`), 404)).code, 'NotFound');
    const fits = await sdk.write(
      '/fits',
      Readable.from([Buffer.alloc(FILE_LIMIT / 2, 1), Buffer.alloc(FILE_LIMIT / 2, 2)]),
    );
    assert.equal(fits.size, FILE_LIMIT);
  });

  it('answers 400 for bad paths, ids and requests, and 404 for another tenant', async () => {
    const sb = await create();
    const files = `/v1/sandboxes/${sb.id}/files`;
    for (const q of ['path=relative', 'path=%2Fa%00b', '', `path=/${'x'.repeat(5000)}`])
      assert.equal((await call('GET', `${files}/stat?${q}`)).status, 400, q);
    assert.equal((await call('PUT', `${files}?path=/m&mode=999`, { body: 'x' })).status, 400);
    for (const volumes of [
      { '/proc/x': 'nb' },
      { '/': 'nb' },
      { 'rel/x': 'nb' },
      { '/a/': 'nb' },
      { '/a': 'nb', '/a/b': 'nb' },
    ]) {
      const e = await errorOf(await call('POST', '/v1/sandboxes', { json: { volumes } }), 400);
      assert.equal(e.code, 'InvalidArgument', JSON.stringify(volumes));
    }
    const copy = await errorOf(
      await call('POST', '/v1/sandboxes', { json: { image: { steps: [{ copy: { from: 'a', to: '/a' } }] } } }),
      400,
    );
    assert.match(copy.message, /copy step/);
    assert.equal(
      (await call('POST', `/v1/sandboxes/${sb.id}/execs`, { json: { argv: ['a'], command: 'b' } })).status,
      400,
    );
    const other = (await srv.engine.createTenant('http-sandboxes-other')).secret;
    for (const [method, path] of [
      ['GET', `/v1/sandboxes/${sb.id}`],
      ['POST', `/v1/sandboxes/${sb.id}/terminate`],
      ['GET', `/v1/sandboxes/${sb.id}/execs`],
      ['GET', `${files}?path=/tmp`],
    ] as const)
      assert.equal((await errorOf(await call(method, path, { token: other }), 404)).code, 'NotFound', path);
    assert.equal((await call('GET', '/v1/sandboxes/sb_..%2F..%2Fetc')).status, 404);
  });

  it('answers 503 naming what is missing when the host cannot run sandboxes', async () => {
    rt.missing = 'user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1';
    try {
      const e = await errorOf(await call('POST', '/v1/sandboxes', { json: {} }), 503);
      assert.equal(e.code, 'Unavailable');
      assert.match(e.message, /user namespaces are disabled: sysctl -w kernel\.unprivileged_userns_clone=1/);
    } finally {
      rt.missing = undefined;
    }
    const bare = await startTestServer();
    try {
      const res = await fetch(`${bare.url}/v1/sandboxes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bare.token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      const e = await errorOf(res, 503);
      assert.match(e.message, /runs no sandbox host .*--no-sandboxes/);
      // Listing needs no host: the records answer.
      const list = await fetch(`${bare.url}/v1/sandboxes`, { headers: { authorization: `Bearer ${bare.token}` } });
      assert.deepEqual(await json(list, 200), { sandboxes: [] });
    } finally {
      await bare.close();
    }
  });

  it('a server starting again ends the records of sandboxes its host lost or saw end meanwhile', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'stowage-sb-restart-'));
    const host = new FakeSandboxRuntime('restart-host');
    const lines: string[] = [];
    const start = () => startServer({ dataDir, port: 0, sandboxRuntime: host, log: (l) => lines.push(l) });
    try {
      const first = await start();
      const token = first.adminToken!;
      const post = async (url: string) =>
        json<wire.Sandbox>(
          await fetch(`${url}/v1/sandboxes`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ image: { base: 'busybox' } }),
          }),
          201,
        );
      const lost = await post(first.url);
      const kept = await post(first.url);
      await first.close();
      host.forget(lost.id);
      const second = await start();
      try {
        assert.ok(
          lines.some((l) => /ended 1 sandbox record/.test(l)),
          lines.join('\n'),
        );
        const get = async (id: string) =>
          json<wire.Sandbox>(
            await fetch(`${second.url}/v1/sandboxes/${id}`, { headers: { authorization: `Bearer ${token}` } }),
            200,
          );
        const gone = await get(lost.id);
        assert.equal(gone.status, 'failed');
        assert.match(gone.reason!, /no longer knows it/);
        assert.equal((await get(kept.id)).status, 'running');
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
