/**
 * @module stores/registry.test
 * Backends are picked by URL scheme from one table; secrets never reach logs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { UrlSigner } from './local/url-signer.js';
import { blobStoreServedByServer, openBlobStore, openMetadataStore, redactUrl } from './registry.js';

let dir: string;
const signer = new UrlSigner({ secret: 'y'.repeat(32), baseUrl: 'http://localhost' });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-registry-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('store registry', () => {
  it('opens a local blob store from a file: URL or a plain path', async () => {
    for (const url of [pathToFileURL(join(dir, 'a')).href, join(dir, 'b')]) {
      const store = await openBlobStore(url, { signer });
      await store.put('k', new Uint8Array([1, 2, 3]));
      assert.equal((await store.head('k'))?.size, 3);
      await store.close();
      assert.equal(blobStoreServedByServer(url), true);
    }
    assert.ok((await stat(join(dir, 'a', 'k'))).isFile());
  });

  it('opens SQLite from a sqlite: URL or a path ending in .db', async () => {
    for (const url of [`sqlite://${join(dir, 'one.db')}`, join(dir, 'two.db')]) {
      const md = await openMetadataStore(url);
      assert.equal(await md.putSettingIfAbsent('k', 'v'), 'v');
      await md.close();
    }
    assert.ok((await stat(join(dir, 'one.db'))).isFile());
    assert.ok((await stat(join(dir, 'two.db'))).isFile());
  });

  it('refuses unknown schemes, naming the supported ones', async () => {
    await assert.rejects(
      openBlobStore('ftp://host/x', { signer }),
      (e: unknown) => isStowageError(e, 'InvalidArgument') && /file:\/\//.test((e as Error).message),
    );
    await assert.rejects(openMetadataStore('mysql://u:hunter2@db/x'), (e: unknown) => {
      const msg = (e as Error).message;
      return isStowageError(e, 'InvalidArgument') && /sqlite:\/\//.test(msg) && !msg.includes('hunter2');
    });
    await assert.rejects(openMetadataStore(join(dir, 'not-a-db.txt')), (e: unknown) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(openMetadataStore('sqlite://remote-host/x.db'), (e: unknown) =>
      isStowageError(e, 'InvalidArgument'),
    );
  });

  it('redacts passwords and secret query parameters', () => {
    assert.equal(redactUrl('postgres://app:hunter2@db:5432/stowage'), 'postgres://app:***@db:5432/stowage');
    const s3 = redactUrl('s3://bucket/prefix?region=us-east-1&secretAccessKey=abc&accessKeyId=AKIA');
    assert.doesNotMatch(s3, /abc|AKIA/);
    assert.match(s3, /region=us-east-1/);
    assert.equal(redactUrl('/var/lib/stowage/blobs'), '/var/lib/stowage/blobs');
    assert.equal(redactUrl('file:///var/lib/stowage/blobs'), 'file:///var/lib/stowage/blobs');
  });
});
