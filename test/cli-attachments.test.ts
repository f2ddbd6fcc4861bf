/**
 * @module test/cli-attachments.test
 * End-to-end tests of `stowage volume attachments` and `stowage volume
 * detach`: the real compiled binary against a real server over loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Stowage, Volume } from '@stowage/sdk';
import { cliEnv, spawnCli, type CliResult } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let client: Stowage;
let emptyData: string;

function cli(args: string[]): Promise<CliResult> {
  return spawnCli(args, { env: cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token, STOWAGE_DATA: emptyData }) })
    .done;
}

function ok(r: CliResult): string {
  assert.equal(r.status, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
  emptyData = await mkdtemp(join(tmpdir(), 'stowage-cli-att-'));
});

after(async () => {
  await srv?.close();
  if (emptyData) await rm(emptyData, { recursive: true, force: true });
});

describe('volume attachments and detach', () => {
  test('lists mounted attachments as a table and JSON; detach releases or fails one', async () => {
    const vol = await Volume.create('cli-att', { client, accessMode: 'RWX' });
    const rw = await vol.attach({ host: 'box-1', path: '/mnt/data' });
    const ro = await vol.attach({ host: 'box-2', path: '/mnt/ro', readOnly: true });

    const table = ok(await cli(['volume', 'attachments', 'cli-att'])).split('\n');
    assert.match(table[0]!, /^ID\s+STATE\s+ACCESS\s+WHERE\s+LEASE\/REASON$/);
    assert.match(table[1]!, new RegExp(`^${rw.attachment.id}\\s+mounted\\s+rw\\s+box-1:/mnt/data\\s+until \\d{4}-`));
    assert.match(table[2]!, new RegExp(`^${ro.attachment.id}\\s+mounted\\s+ro\\s+box-2:/mnt/ro\\s+until `));

    assert.equal(
      ok(await cli(['volume', 'detach', rw.attachment.id])),
      `detached ${rw.attachment.id} (cli-att at box-1:/mnt/data): released, unmounted\n`,
    );
    assert.equal(
      ok(await cli(['volume', 'detach', ro.attachment.id, '--failed', 'sandbox gone'])),
      `detached ${ro.attachment.id} (cli-att at box-2:/mnt/ro): failed, sandbox gone\n`,
    );
    // The mount tokens died with the attachments.
    await assert.rejects(new Stowage({ url: srv.url, token: rw.token }).renewAttachment(rw.attachment.id), {
      code: 'Unauthenticated',
    });

    assert.deepEqual(JSON.parse(ok(await cli(['volume', 'attachments', 'cli-att', '--json']))), []);
    const all = JSON.parse(ok(await cli(['volume', 'attachments', 'cli-att', '--all', '--json']))) as wire.Attachment[];
    assert.deepEqual(
      all.map((a) => [a.id, a.state, a.reason]),
      [
        [rw.attachment.id, 'released', 'unmounted'],
        [ro.attachment.id, 'failed', 'sandbox gone'],
      ],
    );
    const allTable = ok(await cli(['volume', 'attachments', 'cli-att', '--all']));
    assert.match(allTable, new RegExp(`${ro.attachment.id}\\s+failed\\s+ro\\s+box-2:/mnt/ro\\s+sandbox gone`));
  });

  test('errors: unknown attachment (3), unknown volume (3)', async () => {
    const r = await cli(['volume', 'detach', 'att_00000000000000000000']);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /^stowage: attachment att_0+ not found\n$/);
    const v = await cli(['volume', 'attachments', 'no-such-volume']);
    assert.equal(v.status, 3);
    assert.match(v.stderr, /not found/);
  });
});
