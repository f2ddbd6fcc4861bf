/**
 * @module test/attachments.test
 * End-to-end tests of attachments over real loopback HTTP (real SQLite,
 * real blob directory): access modes, scoped mount tokens and their leases,
 * renew, release, resume, and a hostile caller (other tenants, other mounts'
 * tokens, read-only tokens, odd hosts and paths).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Stowage, Volume } from '@stowage/sdk';
import { startTestServer, type TestServer } from './helpers/server.js';

/** Lease of the second server, short enough to watch it run out. */
const SHORT_LEASE = 400;

let srv: TestServer;
let short: TestServer;
let seq = 0;
const fresh = (prefix = 'att'): string => `${prefix}-${++seq}`;

before(async () => {
  [srv, short] = await Promise.all([startTestServer(), startTestServer({ attachmentLease: SHORT_LEASE })]);
});
after(async () => {
  await Promise.all([srv?.close(), short?.close()]);
});

interface Answer<T = any> {
  status: number;
  body: T;
}

/** One API call on `server` (default: the main one) with `token` (default: its admin token). */
async function call<T = any>(
  method: string,
  path: string,
  opts: { token?: string; json?: unknown; server?: TestServer } = {},
): Promise<Answer<T>> {
  const server = opts.server ?? srv;
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? server.token}` };
  if (opts.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers,
    ...(opts.json !== undefined ? { body: JSON.stringify(opts.json) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function createVolume(name: string, accessMode: wire.AccessMode = 'RWO', server = srv): Promise<void> {
  const r = await call('POST', '/v1/volumes', { json: { name, accessMode }, server });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

async function attach(
  volume: string,
  req: wire.AttachRequest,
  opts: { token?: string; server?: TestServer } = {},
): Promise<Answer<wire.AttachResponse>> {
  return call<wire.AttachResponse>('POST', `/v1/volumes/${volume}/attachments`, { json: req, ...opts });
}

/** Attaches and insists it worked. */
async function attached(
  volume: string,
  req: wire.AttachRequest,
  opts: { token?: string; server?: TestServer } = {},
): Promise<wire.AttachResponse> {
  const r = await attach(volume, req, opts);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

function assertError(r: Answer, status: number, code: string, re?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error.code, code);
  if (re) assert.match(r.body.error.message, re);
}

describe('attachments and access modes', () => {
  it('RWO: one read-write attachment; a second is refused naming the first; read-only ones may join', async () => {
    const v = fresh();
    await createVolume(v, 'RWO');
    const first = await attached(v, { host: 'host1', path: '/mnt/data' });
    assert.equal(first.attachment.state, 'mounted');
    assert.equal(first.attachment.volume, v);
    assert.equal(first.attachment.readOnly, false);
    assert.equal(first.attachment.reason, null);
    assert.match(first.attachment.id, /^att_[0-9a-z]{20}$/);
    assert.equal(first.volume.name, v);
    assert.equal(first.tokenExpiresAt, first.attachment.leaseExpiresAt);
    assert.ok(Date.parse(first.tokenExpiresAt) > Date.now() + 30_000, 'default lease is about a minute');

    const second = await attach(v, { host: 'host2', path: '/mnt/other' });
    assertError(
      second,
      409,
      'Conflict',
      new RegExp(
        `^volume "${v}" is RWO and already mounted read-write at host1:/mnt/data \\(${first.attachment.id}\\); unmount it first or mount read-only$`,
      ),
    );
    const ro = await attached(v, { host: 'host2', path: '/mnt/other', readOnly: true });
    assert.equal(ro.attachment.readOnly, true);
    const list = await call<wire.AttachmentList>('GET', `/v1/volumes/${v}/attachments`);
    assert.deepEqual(
      list.body.attachments.map((a) => a.id),
      [first.attachment.id, ro.attachment.id],
    );
  });

  it('ROX: read-write refused, read-only many', async () => {
    const v = fresh();
    await createVolume(v, 'ROX');
    assertError(
      await attach(v, { host: 'h', path: '/m' }),
      409,
      'Conflict',
      new RegExp(`^volume "${v}" is ROX \\(read-only many\\): mount it read-only$`),
    );
    await attached(v, { host: 'h1', path: '/m', readOnly: true });
    await attached(v, { host: 'h2', path: '/m', readOnly: true });
  });

  it('RWX: any number of read-write attachments', async () => {
    const v = fresh();
    await createVolume(v, 'RWX');
    for (let i = 0; i < 3; i++) await attached(v, { host: `h${i}`, path: '/m' });
    assert.equal((await call<wire.AttachmentList>('GET', `/v1/volumes/${v}/attachments`)).body.attachments.length, 3);
  });

  it('concurrent read-write attaches of an RWO volume: exactly one wins', async () => {
    const v = fresh();
    await createVolume(v, 'RWO');
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => attach(v, { host: `h${i}`, path: '/m' })));
    assert.equal(all.filter((r) => r.status === 201).length, 1);
    assert.ok(all.every((r) => r.status === 201 || r.status === 409));
  });
});

describe('mount tokens', () => {
  it('reach only their volume, read-only for read-only attachments', async () => {
    const v = fresh();
    const other = fresh();
    await createVolume(v, 'RWX');
    await createVolume(other);
    const rw = await attached(v, { host: 'h', path: '/m' });
    const ro = await attached(v, { host: 'h', path: '/r', readOnly: true });
    const put = (token: string, volume = v) =>
      call('POST', `/v1/volumes/${volume}/commits`, { token, json: { changes: [{ op: 'mkdir', path: '/d' }] } });
    assert.equal((await put(rw.token)).status, 201);
    assertError(await put(ro.token), 403, 'ReadOnly');
    assert.equal((await call('GET', `/v1/volumes/${v}/list?path=/`, { token: ro.token })).status, 200);
    assertError(await call('GET', `/v1/volumes/${other}`, { token: rw.token }), 404, 'NotFound');
    const tokens = (await call<wire.TokenList>('GET', '/v1/tokens')).body.tokens;
    const t = tokens.find((x) => x.name === `mount:${ro.attachment.id}`);
    assert.ok(t, 'the mount token is named after its attachment');
    assert.equal(t.readOnly, true);
    assert.equal(t.expiresAt, ro.tokenExpiresAt);
  });

  it('symlinks that leave the volume are refused (400) to API tokens and stored for mounts, whose programs make them', async () => {
    const v = fresh();
    await createVolume(v, 'RWX');
    const commit = (changes: unknown[], token?: string) =>
      call('POST', `/v1/volumes/${v}/commits`, { json: { changes }, ...(token !== undefined ? { token } : {}) });
    // The tenant's admin token, and a weak volume-scoped one.
    const scoped = await call<{ secret: string }>('POST', '/v1/tokens', { json: { name: fresh('tok'), volume: v } });
    assert.equal(scoped.status, 201, JSON.stringify(scoped.body));
    for (const token of [undefined, scoped.body.secret]) {
      assertError(
        await commit([{ op: 'symlink', path: '/venv/bin/python', target: '/usr/bin/python3' }], token),
        400,
        'InvalidArgument',
        /target is absolute.*stay inside the volume/,
      );
      assertError(
        await commit(
          [
            { op: 'mkdir', path: '/a' },
            { op: 'symlink', path: '/a/up', target: '../../etc/passwd' },
          ],
          token,
        ),
        400,
        'InvalidArgument',
        /changes\[1\].*climbs out of the volume/,
      );
    }
    assert.equal((await call('GET', `/v1/volumes/${v}/stat?path=/a`)).status, 404, 'a refused commit changes nothing');
    assert.equal((await commit([{ op: 'symlink', path: '/a/in', target: '../b/file' }])).status, 201);
    // A mount's token stores what its programs make.
    const m = await attached(v, { host: 'host1', path: '/mnt/data' });
    assert.equal(
      (await commit([{ op: 'symlink', path: '/venv/bin/python', target: '/usr/bin/python3' }], m.token)).status,
      201,
    );
    assert.equal(
      (await call('GET', `/v1/volumes/${v}/stat?path=/venv/bin/python`)).body.entry.target,
      '/usr/bin/python3',
    );
  });

  it('a mount token cannot attach anew or create tokens; it may resume its own mount only', async () => {
    const v = fresh();
    await createVolume(v, 'RWX');
    const a = await attached(v, { host: 'h', path: '/m' });
    const b = await attached(v, { host: 'h', path: '/b' });
    assertError(await attach(v, { host: 'h', path: '/n' }, { token: a.token }), 403, 'Forbidden', /mount/);
    assertError(
      await attach(v, { host: 'h', path: '/b', resume: b.attachment.id }, { token: a.token }),
      403,
      'Forbidden',
    );
    assertError(await call('POST', '/v1/tokens', { token: a.token, json: { name: 'escalate' } }), 403, 'Forbidden');
    const resumed = await attach(v, { host: 'h', path: '/m', resume: a.attachment.id }, { token: a.token });
    assert.equal(resumed.status, 201);
    assertError(await call('GET', `/v1/volumes/${v}`, { token: a.token }), 401, 'Unauthenticated');
  });

  it('a mount token dies with the token that created it: revocation and expiry carry over to renewals', async () => {
    const v = fresh();
    await createVolume(v, 'RWX');
    const volumeToken = async (name: string, expiresIn?: number) =>
      (
        await call<wire.CreateTokenResponse>('POST', '/v1/tokens', {
          json: { name, volume: v, ...(expiresIn ? { expiresIn } : {}) },
        })
      ).body;
    // Revoking the creator kills its mounts' tokens at once, and their renewals.
    const creator = await volumeToken('creator');
    const m = await attached(v, { host: 'h', path: '/m' }, { token: creator.secret });
    assert.equal((await call('GET', `/v1/volumes/${v}`, { token: m.token })).status, 200);
    assert.equal((await call('DELETE', `/v1/tokens/${creator.token.id}`)).status, 204);
    assertError(
      await call('GET', `/v1/volumes/${v}`, { token: m.token }),
      401,
      'Unauthenticated',
      /minted from has been revoked/,
    );
    assertError(
      await call('POST', `/v1/attachments/${m.attachment.id}/renew`, { token: m.token }),
      401,
      'Unauthenticated',
    );
    // A creator that expires in 2 s: the mount token and its renewals expire with it, not with the 60 s lease.
    const brief = await volumeToken('brief', 2);
    const n = await attached(v, { host: 'h', path: '/n' }, { token: brief.secret });
    assert.equal(n.tokenExpiresAt, brief.token.expiresAt);
    const renewed = await call<wire.RenewAttachmentResponse>('POST', `/v1/attachments/${n.attachment.id}/renew`, {
      token: n.token,
    });
    assert.equal(renewed.status, 200);
    assert.equal(renewed.body.tokenExpiresAt, brief.token.expiresAt);
    await new Promise((r) => setTimeout(r, Date.parse(brief.token.expiresAt!) - Date.now() + 50));
    assertError(await call('GET', `/v1/volumes/${v}`, { token: n.token }), 401, 'Unauthenticated');
  });

  it("resume needs the mount's own token, the token that mounted it, or an admin token: no RWO bypass", async () => {
    const v = fresh();
    await createVolume(v, 'RWO');
    const scoped = async (name: string) =>
      (await call<wire.CreateTokenResponse>('POST', '/v1/tokens', { json: { name, volume: v } })).body.secret;
    const owner = await scoped('owner');
    const intruder = await scoped('intruder');
    const m = await attached(v, { host: 'h', path: '/m' }, { token: owner });
    // The intruder cannot mount read-write (RWO), and cannot take the mount over by resuming it either.
    assertError(await attach(v, { host: 'h', path: '/x' }, { token: intruder }), 409, 'Conflict');
    assertError(
      await attach(v, { host: 'h', path: '/m', resume: m.attachment.id }, { token: intruder }),
      403,
      'Forbidden',
      /own mount token/,
    );
    assertError(
      await call('POST', `/v1/attachments/${m.attachment.id}/release`, { token: intruder, json: {} }),
      403,
      'Forbidden',
    );
    assertError(await call('POST', `/v1/attachments/${m.attachment.id}/renew`, { token: intruder }), 403, 'Forbidden');
    assert.equal((await call('GET', `/v1/volumes/${v}`, { token: m.token })).status, 200, 'the mount lives on');
    // Its creator may resume it (a restarted mount agent), and so may an admin.
    const again = await attached(v, { host: 'h', path: '/m', resume: m.attachment.id }, { token: owner });
    assert.equal(again.attachment.id, m.attachment.id);
    const admin = await attached(v, { host: 'h', path: '/m', resume: m.attachment.id });
    assert.equal(admin.attachment.id, m.attachment.id);
  });

  it('a read-only token cannot attach read-write, but can attach read-only', async () => {
    const v = fresh();
    await createVolume(v);
    const { secret } = (
      await call<wire.CreateTokenResponse>('POST', '/v1/tokens', { json: { name: 'ro', readOnly: true } })
    ).body;
    assertError(await attach(v, { host: 'h', path: '/m' }, { token: secret }), 403, 'ReadOnly', /read-only/);
    await attached(v, { host: 'h', path: '/m', readOnly: true }, { token: secret });
  });

  it('release revokes the token (401 after), is idempotent, and frees an RWO volume', async () => {
    const v = fresh();
    await createVolume(v);
    const a = await attached(v, { host: 'h', path: '/m' });
    const released = await call<wire.Attachment>('POST', `/v1/attachments/${a.attachment.id}/release`, {
      token: a.token,
    });
    assert.equal(released.status, 200);
    assert.equal(released.body.state, 'released');
    assert.equal(released.body.reason, 'unmounted');
    assertError(await call('GET', `/v1/volumes/${v}`, { token: a.token }), 401, 'Unauthenticated', /revoked/);
    const again = await call<wire.Attachment>('POST', `/v1/attachments/${a.attachment.id}/release`);
    assert.equal(again.status, 200);
    assert.equal(again.body.state, 'released');
    assert.equal(again.body.updatedAt, released.body.updatedAt);
    await attached(v, { host: 'h2', path: '/m' });
    assert.equal((await call<wire.AttachmentList>('GET', `/v1/volumes/${v}/attachments`)).body.attachments.length, 1);
    const all = (await call<wire.AttachmentList>('GET', `/v1/volumes/${v}/attachments?all=true`)).body.attachments;
    assert.deepEqual(
      all.map((x) => x.state),
      ['released', 'mounted'],
    );
  });

  it('release with failed records the reason', async () => {
    const v = fresh();
    await createVolume(v);
    const a = await attached(v, { host: 'h', path: '/m' });
    const r = await call<wire.Attachment>('POST', `/v1/attachments/${a.attachment.id}/release`, {
      json: { failed: true, reason: 'FUSE died' },
    });
    assert.equal(r.body.state, 'failed');
    assert.equal(r.body.reason, 'FUSE died');
    assertError(
      await call('POST', `/v1/attachments/${a.attachment.id}/renew`),
      409,
      'Conflict',
      /is failed \(FUSE died\)/,
    );
  });

  it('renew extends the lease and the token expiry', async () => {
    const v = fresh();
    await createVolume(v);
    const a = await attached(v, { host: 'h', path: '/m' });
    await sleep(20);
    const r = await call<wire.RenewAttachmentResponse>('POST', `/v1/attachments/${a.attachment.id}/renew`, {
      token: a.token,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(Date.parse(r.body.tokenExpiresAt) > Date.parse(a.tokenExpiresAt));
    assert.equal(r.body.attachment.leaseExpiresAt, r.body.tokenExpiresAt);
    const t = (await call<wire.TokenList>('GET', '/v1/tokens')).body.tokens.find(
      (x) => x.name === `mount:${a.attachment.id}`,
    );
    assert.equal(t?.expiresAt, r.body.tokenExpiresAt);
    // A tenant token may renew too (e.g. a supervisor).
    assert.equal((await call('POST', `/v1/attachments/${a.attachment.id}/renew`)).status, 200);
  });

  it("renew or release with another attachment's token: 403 on the same volume, 404 from another", async () => {
    const v = fresh();
    const w = fresh();
    await createVolume(v, 'RWX');
    await createVolume(w);
    const a = await attached(v, { host: 'h', path: '/a' });
    const b = await attached(v, { host: 'h', path: '/b' });
    const c = await attached(w, { host: 'h', path: '/c' });
    assertError(await call('POST', `/v1/attachments/${a.attachment.id}/renew`, { token: b.token }), 403, 'Forbidden');
    assertError(await call('POST', `/v1/attachments/${a.attachment.id}/release`, { token: b.token }), 403, 'Forbidden');
    assertError(await call('POST', `/v1/attachments/${a.attachment.id}/renew`, { token: c.token }), 404, 'NotFound');
    assertError(await call('POST', '/v1/attachments/att_00000000000000000000/renew'), 404, 'NotFound');
    assertError(await call('POST', '/v1/attachments/not-an-id/release'), 404, 'NotFound');
  });

  it('resume re-issues the token of the same attachment; the old token is 401', async () => {
    const v = fresh();
    await createVolume(v);
    const a = await attached(v, { host: 'h', path: '/m' });
    const r = await attached(v, { host: 'h', path: '/m', resume: a.attachment.id });
    assert.equal(r.attachment.id, a.attachment.id);
    assert.notEqual(r.token, a.token);
    assertError(await call('GET', `/v1/volumes/${v}`, { token: a.token }), 401, 'Unauthenticated');
    assert.equal((await call('GET', `/v1/volumes/${v}`, { token: r.token })).status, 200);
    assertError(
      await attach(v, { host: 'h', path: '/elsewhere', resume: a.attachment.id }),
      409,
      'Conflict',
      /resume only takes over the same mount/,
    );
    assertError(await attach(v, { host: 'h', path: '/m', resume: 'att_00000000000000000000' }), 404, 'NotFound');
    // A failed attachment can be resumed; a released one cannot.
    await call('POST', `/v1/attachments/${a.attachment.id}/release`, {
      json: { failed: true, reason: 'agent crashed' },
    });
    const back = await attached(v, { host: 'h', path: '/m', resume: a.attachment.id });
    assert.equal(back.attachment.state, 'mounted');
    assert.equal(back.attachment.reason, null);
    await call('POST', `/v1/attachments/${a.attachment.id}/release`);
    assertError(await attach(v, { host: 'h', path: '/m', resume: a.attachment.id }), 409, 'Conflict', /released/);
  });

  it('another tenant sees nothing: 404 everywhere', async () => {
    const v = fresh();
    await createVolume(v);
    const a = await attached(v, { host: 'h', path: '/m' });
    const { secret } = await srv.engine.createTenant(fresh('tenant'));
    assertError(await attach(v, { host: 'h', path: '/x' }, { token: secret }), 404, 'NotFound');
    assertError(await call('GET', `/v1/volumes/${v}/attachments`, { token: secret }), 404, 'NotFound');
    assertError(await call('POST', `/v1/attachments/${a.attachment.id}/renew`, { token: secret }), 404, 'NotFound');
    assertError(await call('POST', `/v1/attachments/${a.attachment.id}/release`, { token: secret }), 404, 'NotFound');
    assertError(
      await attach(v, { host: 'h', path: '/m', resume: a.attachment.id }, { token: secret }),
      404,
      'NotFound',
    );
  });

  it('refuses hostile hosts and paths with 400', async () => {
    const v = fresh();
    await createVolume(v, 'RWX');
    const bad: unknown[] = [
      { host: 'h\u0000x', path: '/m' },
      { host: 'h\nx', path: '/m' },
      { host: '', path: '/m' },
      { host: 'h'.repeat(254), path: '/m' },
      { host: 'h', path: 'relative/path' },
      { host: 'h', path: '' },
      { host: 'h', path: '/m\u0000/x' },
      { host: 'h', path: `/${'a'.repeat(10 * 1024)}` },
      { host: 7, path: '/m' },
      { host: 'h', path: '/m', readOnly: 'yes' },
    ];
    for (const body of bad) {
      const r = await call('POST', `/v1/volumes/${v}/attachments`, { json: body });
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(r.body).slice(0, 200)}`);
    }
    assertError(
      await call('POST', `/v1/attachments/${(await attached(v, { host: 'h', path: '/m' })).attachment.id}/release`, {
        json: { reason: 'x'.repeat(2000) },
      }),
      400,
      'InvalidArgument',
    );
    assert.equal((await call<wire.AttachmentList>('GET', `/v1/volumes/${v}/attachments`)).body.attachments.length, 1);
  });

  it('deleting a volume fails its attachments and kills their tokens', async () => {
    const v = fresh();
    await createVolume(v, 'RWX');
    const a = await attached(v, { host: 'h', path: '/m' });
    const done = await attached(v, { host: 'h', path: '/n' });
    await call('POST', `/v1/attachments/${done.attachment.id}/release`);
    assert.equal((await call('DELETE', `/v1/volumes/${v}`)).status, 204);
    assertError(await call('GET', `/v1/volumes/${v}`, { token: a.token }), 401, 'Unauthenticated');
    const r = await call<wire.Attachment>('POST', `/v1/attachments/${a.attachment.id}/release`);
    assert.equal(r.body.state, 'failed');
    assert.equal(r.body.reason, 'volume deleted');
    assert.equal(r.body.volume, '(deleted)');
    const kept = await call<wire.Attachment>('POST', `/v1/attachments/${done.attachment.id}/release`);
    assert.equal(kept.body.state, 'released', 'a released attachment stays released');
  });
});

describe('leases', () => {
  it('an expired lease frees an RWO volume: the old mount is failed and its token dead', async () => {
    const v = fresh();
    await createVolume(v, 'RWO', short);
    const a = await attached(v, { host: 'h1', path: '/m' }, { server: short });
    assertError(await attach(v, { host: 'h2', path: '/m' }, { server: short }), 409, 'Conflict');
    await sleep(SHORT_LEASE + 100);
    assertError(
      await call('GET', `/v1/volumes/${v}`, { token: a.token, server: short }),
      401,
      'Unauthenticated',
      /expired/,
    );
    const b = await attached(v, { host: 'h2', path: '/m' }, { server: short });
    const all = (await call<wire.AttachmentList>('GET', `/v1/volumes/${v}/attachments?all=1`, { server: short })).body
      .attachments;
    assert.deepEqual(
      all.map((x) => [x.id, x.state, x.reason]),
      [
        [a.attachment.id, 'failed', 'lease expired: the mount agent stopped renewing'],
        [b.attachment.id, 'mounted', null],
      ],
    );
    assertError(
      await call('POST', `/v1/attachments/${a.attachment.id}/renew`, { server: short }),
      409,
      'Conflict',
      /lease expired/,
    );
  });

  it('renewing in time keeps the mount; a late renew succeeds while nobody took the volume', async () => {
    const v = fresh();
    await createVolume(v, 'RWO', short);
    const a = await attached(v, { host: 'h1', path: '/m' }, { server: short });
    for (let i = 0; i < 3; i++) {
      await sleep(SHORT_LEASE / 3);
      const r = await call('POST', `/v1/attachments/${a.attachment.id}/renew`, { token: a.token, server: short });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    assertError(await attach(v, { host: 'h2', path: '/m' }, { server: short }), 409, 'Conflict', /h1:\/m/);
    await sleep(SHORT_LEASE + 100);
    // The lease ran out but nobody else mounted: a tenant token may still renew it, which revives the token.
    const late = await call<wire.RenewAttachmentResponse>('POST', `/v1/attachments/${a.attachment.id}/renew`, {
      server: short,
    });
    assert.equal(late.status, 200, JSON.stringify(late.body));
    assert.equal((await call('GET', `/v1/volumes/${v}`, { token: a.token, server: short })).status, 200);
  });
});

describe('attachments in the OpenAPI document', () => {
  it('lists the four routes and the schemas of the wire contract', async () => {
    const doc = (await (await fetch(`${srv.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    assert.ok(doc.paths['/v1/volumes/{name}/attachments']?.post);
    assert.ok(doc.paths['/v1/volumes/{name}/attachments']?.get);
    assert.ok(doc.paths['/v1/attachments/{id}/renew']?.post);
    assert.ok(doc.paths['/v1/attachments/{id}/release']?.post);
    for (const name of [
      'Attachment',
      'AttachRequest',
      'AttachResponse',
      'AttachmentList',
      'RenewAttachmentResponse',
      'ReleaseAttachmentRequest',
    ])
      assert.ok(doc.components.schemas[name], name);
    assert.ok(doc.components.schemas.CommitRequest?.properties?.bestEffort);
    assert.ok(doc.components.schemas.CommitResponse?.properties?.skipped);
  });
});

describe('attachments through the SDK', () => {
  it('attach, attachments, renewAttachment and releaseAttachment', async () => {
    const client = new Stowage({ url: srv.url, token: srv.token });
    const vol = await Volume.create(fresh(), { client, accessMode: 'RWO' });
    const a = await vol.attach({ host: 'sdk', path: '/mnt/sdk' });
    assert.equal(a.attachment.state, 'mounted');
    await assert.rejects(vol.attach({ host: 'sdk2', path: '/mnt/sdk' }), { code: 'Conflict' });
    assert.deepEqual(
      (await vol.attachments()).map((x) => x.id),
      [a.attachment.id],
    );
    const mount = new Stowage({ url: srv.url, token: a.token });
    const renewed = await mount.renewAttachment(a.attachment.id);
    assert.ok(Date.parse(renewed.tokenExpiresAt) >= Date.parse(a.tokenExpiresAt));
    const released = await mount.releaseAttachment(a.attachment.id);
    assert.equal(released.state, 'released');
    await assert.rejects(mount.renewAttachment(a.attachment.id), { code: 'Unauthenticated' });
    assert.deepEqual(await vol.attachments(), []);
    assert.equal((await vol.attachments({ all: true })).length, 1);
  });
});
