/**
 * Dedupe proof-of-ownership over real HTTP on the default deployment (SQLite
 * file, local blob directory): a chunk hash is never a read key, and the
 * uploads endpoint answers "present" only about the caller's own chunks.
 * The same scenario runs over S3 (s3-server.test) and PostgreSQL
 * (postgres-server.test).
 */
import { describe, it, before, after } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.js';
import { runOwnershipAttack } from './helpers/ownership.js';

describe('chunk ownership over HTTP (SQLite, local blobs)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.close();
  });

  it('refuses hash-only claims across tenants and scoped volumes, forged re-uploads, and allows honest re-uploads and forks', {
    timeout: 120_000,
  }, async () => {
    await runOwnershipAttack(srv, 'local', true);
  });
});
