/**
 * The wire shapes are the Json mirror of the records: these checks fail to
 * compile (so the build fails) when Json stops turning Dates and branded ids
 * into strings or starts widening a vocabulary.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as wire from '../api/wire.js';
import type { CommitId, VolumeId } from '../common/ids.js';
import type { AccessMode, Json } from './records.js';
import { ACCESS_MODES } from './records.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const check = <T extends true>(): T => true as T;

describe('the domain model and its wire mirror (model/records)', () => {
  it('Json maps Dates and branded ids to strings and keeps vocabularies, nulls and arrays', () => {
    check<Equal<Json<Date>, string>>();
    check<Equal<Json<VolumeId>, string>>();
    check<Equal<Json<Date | null>, string | null>>();
    check<Equal<Json<AccessMode>, AccessMode>>();
    check<Equal<Json<CommitId[]>, string[]>>();
    check<Equal<Json<{ at: Date; n: number; ok: boolean }>, { at: string; n: number; ok: boolean }>>();
    check<Equal<wire.Volume['accessMode'], 'RWO' | 'ROX' | 'RWX'>>();
    check<Equal<wire.Commit['paths'], string[]>>();
    check<Equal<wire.Token['volume'], string | null>>();
    check<Equal<wire.Attachment['state'], 'mounted' | 'released' | 'failed'>>();
    assert.deepEqual([...ACCESS_MODES], ['RWO', 'ROX', 'RWX']);
  });
});
