/**
 * @module setting-queries
 * Service-wide settings (key -> value, first writer wins), in SQL.
 */
import type { MetadataOps } from '../metadata-store.js';
import type { SqlRunner } from './sql-runner.js';

/** The setting methods of MetadataOps over `runner`'s handle. */
export function settingQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async getSetting(key: string): Promise<string | undefined> {
      const row = await runner.run('read a setting', () => db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst());
      return row?.value;
    },

    async putSettingIfAbsent(key: string, value: string): Promise<string> {
      return runner.run('store a setting', async () => {
        // Insert-or-ignore, then read back: whichever writer got there first
        // (in this process or another), every caller sees its value.
        await db
          .insertInto('settings')
          .values({ key, value })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
        const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow();
        return row.value;
      });
    },
  } satisfies Partial<MetadataOps>;
}
