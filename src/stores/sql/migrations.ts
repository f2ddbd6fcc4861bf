/**
 * @module migrations
 * Versioned schema migrations of the SQL metadata store, run with Kysely's
 * Migrator from an in-code provider (no migration files to ship or find at
 * run time). Names sort in the order they run: `001_initial`, `002_...`.
 *
 * Migrations are written with Kysely's schema builder so the same code runs
 * on SQLite and PostgreSQL. The only type that differs is the binary column
 * (`blob` vs `bytea`), chosen by the dialect name passed in.
 *
 * Rules: a released migration is never edited (databases in the field have
 * already run it); a change of schema is a new migration. Migrations only go
 * up; a database newer than the code fails with a clear error instead of
 * being used with a schema the code does not know.
 */
import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { InternalError, UnavailableError } from '@stowage/sdk/common/errors.js';
import type { SqlDialectName } from './sql-dialect-info.js';

/** Every migration, by name, for one dialect. */
export function metadataMigrations(dialect: SqlDialectName): Record<string, Migration> {
  const binary = dialect === 'postgres' ? 'bytea' : 'blob';
  return {
    '001_initial': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration runs against a past schema, not today's table types
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('tenants')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('default_cap', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('volume_id', 'text')
          .addColumn('read_only', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema
          .createIndex('tokens_tenant_created')
          .on('tokens')
          .columns(['tenant_id', 'created_at'])
          .execute();

        await db.schema
          .createTable('volumes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('access_mode', 'text', (c) => c.notNull())
          .addColumn('cap', 'bigint', (c) => c.notNull())
          .addColumn('tuning', 'text', (c) => c.notNull())
          .addColumn('head', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('file_count', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('volumes_tenant_name_unique', ['tenant_id', 'name'])
          .execute();

        await db.schema
          .createTable('commits')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('volume_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('parent', 'text')
          .addColumn('tree', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('author', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('file_count', 'bigint', (c) => c.notNull())
          .addColumn('summary', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('commits_volume_seq').on('commits').columns(['volume_id', 'seq']).execute();
        // Pruning and GC roots select commits by age.
        await db.schema.createIndex('commits_created').on('commits').column('created_at').execute();

        await db.schema
          .createTable('snapshots')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('volume_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('commit_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('snapshots_volume_name_unique', ['volume_id', 'name'])
          .execute();
        await db.schema.createIndex('snapshots_commit').on('snapshots').column('commit_id').execute();

        await db.schema
          .createTable('trees')
          .addColumn('hash', 'text', (c) => c.primaryKey())
          .addColumn('data', binary, (c) => c.notNull())
          .addColumn('touched_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('trees_touched').on('trees').column('touched_at').execute();

        await db.schema
          .createTable('chunks')
          .addColumn('hash', 'text', (c) => c.primaryKey())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('object_key', 'text', (c) => c.notNull())
          .addColumn('offset', 'bigint', (c) => c.notNull())
          .addColumn('touched_at', 'bigint', (c) => c.notNull())
          .execute();
        // GC finds the live chunks of a pack object by key.
        await db.schema.createIndex('chunks_object_key').on('chunks').column('object_key').execute();
        await db.schema.createIndex('chunks_touched').on('chunks').column('touched_at').execute();

        await db.schema
          .createTable('settings')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '002_attachments': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration runs against a past schema, not today's table types
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('attachments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('volume_id', 'text', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('read_only', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('token_id', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_expires_at', 'bigint', (c) => c.notNull())
          .execute();
        // The access-mode check reads a volume's attachments on every attach.
        await db.schema
          .createIndex('attachments_volume_created')
          .on('attachments')
          .columns(['volume_id', 'created_at'])
          .execute();
        // Nullable, so existing tokens need no value: they are not mount tokens.
        await db.schema.alterTable('tokens').addColumn('attachment_id', 'text').execute();
      },
    },
    '003_chunk_owners': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration runs against a past schema, not today's table types
      async up(db: Kysely<any>): Promise<void> {
        // Who may reference a chunk (a tenant id or a volume id): a hash alone is never a read key.
        // The primary key (owner, hash) answers "which of these hashes do these owners own?".
        await db.schema
          .createTable('chunk_owners')
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          // When the owner first owned it: a fork owns what its source owned up to the fork, not what the source gains later.
          .addColumn('since', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('chunk_owners_pk', ['owner', 'hash'])
          .execute();
        // GC drops the owner rows of a chunk whose row it deleted.
        await db.schema.createIndex('chunk_owners_hash').on('chunk_owners').column('hash').execute();
        // A fork owns what its sources owned when it was made: [{ volumeId, until }] nearest first (JSON); null for none.
        await db.schema.alterTable('volumes').addColumn('ancestors', 'text').execute();
        // Tenant-wide quotas; null means the default (uncommitted) or unlimited (storage).
        await db.schema.alterTable('tenants').addColumn('storage_quota', 'bigint').execute();
        await db.schema.alterTable('tenants').addColumn('uncommitted_quota', 'bigint').execute();
        // Bytes a tenant may still upload before a commit takes them in: one row per signed PUT or staged upload.
        await db.schema
          .createTable('upload_reservations')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('volume_id', 'text', (c) => c.notNull())
          .addColumn('bytes', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('upload_reservations_tenant')
          .on('upload_reservations')
          .columns(['tenant_id', 'expires_at'])
          .execute();
      },
    },
    '004_token_parents': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration runs against a past schema, not today's table types
      async up(db: Kysely<any>): Promise<void> {
        // Nullable: tokens minted before this migration have no parent to die with.
        await db.schema.alterTable('tokens').addColumn('parent_id', 'text').execute();
      },
    },
    '005_sandboxes': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration runs against a past schema, not today's table types
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('sandboxes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('image', 'text', (c) => c.notNull())
          .addColumn('volumes', 'text', (c) => c.notNull())
          // Thousandths of a core: an integer column reads the same on both engines, a fraction would not.
          .addColumn('cpu_millis', 'bigint', (c) => c.notNull())
          .addColumn('memory_mib', 'bigint', (c) => c.notNull())
          .addColumn('disk_gib', 'bigint', (c) => c.notNull())
          .addColumn('env', 'text', (c) => c.notNull())
          .addColumn('timeout_seconds', 'bigint', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .execute();
        // A tenant's listing, newest first.
        await db.schema
          .createIndex('sandboxes_tenant_created')
          .on('sandboxes')
          .columns(['tenant_id', 'created_at'])
          .execute();
        // A host's reconciliation at start reads its live sandboxes.
        await db.schema.createIndex('sandboxes_host_status').on('sandboxes').columns(['host', 'status']).execute();
      },
    },
  };
}

/** Kysely's provider over {@link metadataMigrations}. */
export function metadataMigrationProvider(dialect: SqlDialectName): MigrationProvider {
  return { getMigrations: async () => metadataMigrations(dialect) };
}

/**
 * Brings the schema up to the latest migration; a no-op when it is current.
 * On PostgreSQL, Kysely's Migrator holds a session advisory lock while it
 * migrates, so replicas starting at once run each migration exactly once.
 * Throws InternalError naming the failed migration (the database is left at
 * the last migration that succeeded, since each runs in a transaction).
 *
 * @example
 * await migrateToLatest(db, 'sqlite');
 */
export async function migrateToLatest(
  // biome-ignore lint/suspicious/noExplicitAny: the migrator works on whatever schema the database holds
  db: Kysely<any>,
  dialect: SqlDialectName,
  options: { schema?: string } = {},
): Promise<void> {
  // A PostgreSQL schema other than the default must be named to the Migrator:
  // it creates the schema if missing, and looks for its own table there
  // (without it, a kysely_migration table in any other schema would count).
  const migrator = new Migrator({
    db,
    provider: metadataMigrationProvider(dialect),
    ...(options.schema !== undefined ? { migrationTableSchema: options.schema } : {}),
  });
  let outcome: Awaited<ReturnType<Migrator['migrateToLatest']>>;
  try {
    outcome = await migrator.migrateToLatest();
  } catch (err) {
    // migrateToLatest reports its own failures in `error`; a throw here means
    // the database could not be reached at all.
    throw new UnavailableError(`cannot migrate the metadata database: ${describe(err)}`, { cause: err });
  }
  if (outcome.error === undefined) return;
  const failed = outcome.results?.find((r) => r.status === 'Error');
  const where = failed ? `migration "${failed.migrationName}" failed` : 'migrations could not run';
  throw new InternalError(
    `metadata database ${where}: ${describe(outcome.error)}. ` +
      'If the database was created by a newer Stowage, run that version or restore a backup.',
    { cause: outcome.error },
  );
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
