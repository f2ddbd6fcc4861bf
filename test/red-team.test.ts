/**
 * Red team over real HTTP: holes found by attacking the server with weak
 * tokens, each proved by a scenario that failed before its fix.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { Stowage, Volume } from '@stowage/sdk';
import { MAX_WATCHES_PER_TENANT } from '../src/server/routes/search-routes.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

interface Answer {
  status: number;
  body: any;
}

describe('red team', () => {
  let srv: TestServer;
  const api = async (path: string, token: string, body?: unknown, method = 'POST'): Promise<Answer> => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.close();
  });

  it('another tenant cannot claim a neighbour chunk by re-declaring the pack it learned from a read plan', async () => {
    // Alice packs a public file and a secret together (writeMany sends small files as one pack).
    const pub = Buffer.from('Permission is hereby granted, free of charge, to any person obtaining a copy\n');
    const secret = Buffer.from(`alice's secret ${randomBytes(8).toString('hex')}\n`);
    const alice = new Stowage({ url: srv.url, token: srv.token });
    const vault = await Volume.create('vault-pack', { client: alice });
    await vault.files.writeMany([
      { path: '/a-license.txt', data: pub },
      { path: '/b-secret.txt', data: secret },
    ]);

    // Bob, another tenant, has the public file and knows the secret's SHA-256 and size (the attack's premise).
    const bob = (await srv.engine.createTenant('bob-pack')).secret;
    const loot = await Volume.create('loot', { client: new Stowage({ url: srv.url, token: bob }) });
    await loot.files.write('/license.txt', pub);
    // His read plan of his own file points into Alice's pack (stored once): the URL names the pack's key.
    const plan = await api('/v1/volumes/loot/read?path=/license.txt', bob, undefined, 'GET');
    assert.equal(plan.status, 200, JSON.stringify(plan.body));
    const key = /\/v1\/blobs\/(packs\/[^?]+)/.exec(plan.body.chunks[0].request.url)?.[1];
    assert.ok(key, `the read plan names a pack: ${plan.body.chunks[0].request.url}`);

    // He declares that pack (both orders) to prove the secret's hash, and commits a file made of it.
    const change = {
      op: 'put',
      path: '/stolen',
      size: secret.length,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks: [sha(secret)],
    };
    const orders = [
      [pub, secret],
      [secret, pub],
    ];
    for (const order of orders) {
      let offset = 0;
      const chunks = order.map((b) => {
        const c = { hash: sha(b), offset, size: b.length };
        offset += b.length;
        return c;
      });
      const claim = await api('/v1/volumes/loot/commits', bob, { changes: [change], packs: [{ key, chunks }] });
      assert.ok(
        claim.status === 412 || claim.status === 400,
        `claim refused: ${claim.status} ${JSON.stringify(claim.body)}`,
      );
    }
    assert.equal((await api('/v1/volumes/loot/content?path=/stolen', bob, undefined, 'GET')).status, 404);
    // Alice's own files are untouched.
    assert.equal((await vault.files.read('/b-secret.txt')).toString(), secret.toString());
  });

  it('a leaked pack key proves nothing to another tenant, even for chunks no commit has registered yet', async () => {
    // Alice uploads one pack holding a public file and a secret, and commits only the public file so far
    // (a big upload commits in pages): the secret's chunk is in the pack but registered by no commit.
    const pub = Buffer.from('Apache License, Version 2.0, January 2004\n');
    const secret = Buffer.from(`alice's unpublished secret ${randomBytes(8).toString('hex')}\n`);
    const pack = Buffer.concat([pub, secret]);
    const chunks = [
      { hash: sha(pub), offset: 0, size: pub.length },
      { hash: sha(secret), offset: pub.length, size: secret.length },
    ];
    assert.equal((await api('/v1/volumes', srv.token, { name: 'paged-upload' })).status, 201);
    const signed = await api('/v1/volumes/paged-upload/packs', srv.token, { size: pack.length, sha256: sha(pack) });
    assert.equal(
      (await fetch(signed.body.request.url, { method: 'PUT', body: pack, headers: signed.body.request.headers }))
        .status,
      201,
    );
    const page1 = await api('/v1/volumes/paged-upload/commits', srv.token, {
      changes: [{ op: 'put', path: '/LICENSE', size: pub.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha(pub)] }],
      packs: [{ key: signed.body.key, chunks }],
    });
    assert.equal(page1.status, 201, JSON.stringify(page1.body));
    // Bob learned the pack key (any read plan of the public file names it) and the secret's hash and size.
    const bob = (await srv.engine.createTenant('bob-leak')).secret;
    assert.equal((await api('/v1/volumes', bob, { name: 'leak' })).status, 201);
    const claim = await api('/v1/volumes/leak/commits', bob, {
      changes: [
        { op: 'put', path: '/stolen', size: secret.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha(secret)] },
      ],
      packs: [{ key: signed.body.key, chunks }],
    });
    assert.equal(claim.status, 412, JSON.stringify(claim.body));
    assert.equal((await api('/v1/volumes/leak/content?path=/stolen', bob, undefined, 'GET')).status, 404);
    // Alice's second page, with the same pack, still commits.
    const page2 = await api('/v1/volumes/paged-upload/commits', srv.token, {
      changes: [
        { op: 'put', path: '/secret', size: secret.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha(secret)] },
      ],
      packs: [{ key: signed.body.key, chunks }],
    });
    assert.equal(page2.status, 201, JSON.stringify(page2.body));
  });

  it('a link kept inside the volume cannot be moved (alone or in its directory) to where it leaves the volume', async () => {
    const admin = srv.token;
    assert.equal((await api('/v1/volumes', admin, { name: 'links' })).status, 201);
    // Inside: /a/b/l -> ../../etc/passwd is /etc/passwd of the volume.
    const made = await api('/v1/volumes/links/commits', admin, {
      changes: [
        { op: 'symlink', path: '/a/b/l', target: '../../etc/passwd' },
        { op: 'symlink', path: '/d/e/f/l2', target: '../../../etc/shadow' },
      ],
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    // Moving the link up one level makes it climb out: refused, like writing it there.
    const up = await api('/v1/volumes/links/commits', admin, { changes: [{ op: 'move', from: '/a/b/l', to: '/l' }] });
    assert.equal(up.status, 400, JSON.stringify(up.body));
    assert.match(up.body.error.message, /climbs out of the volume/);
    // Moving its directory up does the same to the link inside.
    const dir = await api('/v1/volumes/links/commits', admin, { changes: [{ op: 'move', from: '/d/e', to: '/e' }] });
    assert.equal(dir.status, 400, JSON.stringify(dir.body));
    assert.match(dir.body.error.message, /\/e\/f\/l2/);
    // Up and then down again in one commit still ends outside.
    const twice = await api('/v1/volumes/links/commits', admin, {
      changes: [
        { op: 'move', from: '/a/b/l', to: '/l' },
        { op: 'move', from: '/l', to: '/x/l' },
      ],
    });
    assert.equal(twice.status, 400, JSON.stringify(twice.body));
    // Nothing moved; a move that keeps the link inside still works.
    assert.equal((await api('/v1/volumes/links/stat?path=/a/b/l', admin, undefined, 'GET')).status, 200);
    const sideways = await api('/v1/volumes/links/commits', admin, {
      changes: [{ op: 'move', from: '/a/b', to: '/c/b' }],
    });
    assert.equal(sideways.status, 201, JSON.stringify(sideways.body));
  });

  it('a chain of links cannot climb out: ".." after a name that is a link to the top', async () => {
    const admin = srv.token;
    assert.equal((await api('/v1/volumes', admin, { name: 'chain' })).status, 201);
    // /p/q/r -> ../.. is the volume's top: allowed.
    const top = await api('/v1/volumes/chain/commits', admin, {
      changes: [{ op: 'symlink', path: '/p/q/r', target: '../..' }],
    });
    assert.equal(top.status, 201, JSON.stringify(top.body));
    // /s -> p/q/r/../../etc/passwd never counts below "/", but on disk r leads to the top and the two ".." climb
    // above the mount point (or the download directory) to the reader's /etc/passwd.
    for (const target of ['p/q/r/../../etc/passwd', 'p/q/r/..']) {
      const s = await api('/v1/volumes/chain/commits', admin, { changes: [{ op: 'symlink', path: '/s', target }] });
      assert.equal(s.status, 400, `${target}: ${JSON.stringify(s.body)}`);
      assert.match(s.body.error.message, /after a name/);
    }
    assert.equal((await api('/v1/volumes/chain/stat?path=/s', admin, undefined, 'GET')).status, 404);
  });

  it('a read-only token cannot hold watches open without bound (each polls the metadata store)', {
    timeout: 60_000,
  }, async () => {
    assert.equal((await api('/v1/volumes', srv.token, { name: 'watched' })).status, 201);
    const ro = await api('/v1/tokens', srv.token, { name: 'reader', readOnly: true });
    assert.equal(ro.status, 201, JSON.stringify(ro.body));
    const watch = async (token: string) => {
      const ctl = new AbortController();
      const res = await fetch(`${srv.url}/v1/volumes/watched/watch`, {
        headers: { authorization: `Bearer ${token}` },
        signal: ctl.signal,
      });
      return {
        res,
        close: () => {
          ctl.abort();
          res.body?.cancel().catch(() => undefined);
        },
      };
    };
    const open: Array<Awaited<ReturnType<typeof watch>>> = [];
    try {
      for (let i = 0; i < MAX_WATCHES_PER_TENANT; i++) {
        const w = await watch(ro.body.secret);
        open.push(w);
        assert.equal(w.res.status, 200);
      }
      // One more from the same tenant, with any of its tokens: refused, nothing held open.
      for (const token of [ro.body.secret, srv.token]) {
        const extra = await watch(token);
        assert.equal(extra.res.status, 503);
        assert.match(((await extra.res.json()) as any).error.message, /watches open/);
      }
      // Another tenant is not starved by this one.
      const other = (await srv.engine.createTenant('other-watcher')).secret;
      assert.equal((await api('/v1/volumes', other, { name: 'theirs' })).status, 201);
      const ctl = new AbortController();
      const theirs = await fetch(`${srv.url}/v1/volumes/theirs/watch`, {
        headers: { authorization: `Bearer ${other}` },
        signal: ctl.signal,
      });
      assert.equal(theirs.status, 200);
      ctl.abort();
      // Closing a watch frees its place (the server notices within a poll).
      open.pop()!.close();
      let status = 0;
      for (let i = 0; i < 40 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const again = await watch(ro.body.secret);
        status = again.res.status;
        if (status === 200) open.push(again);
        else await again.res.text();
      }
      assert.equal(status, 200);
    } finally {
      for (const w of open) w.close();
    }
  });
});
