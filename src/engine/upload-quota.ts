/**
 * @module engine/upload-quota
 * Bounds on bytes that are stored but not (yet) part of any volume, and on
 * what a tenant stores in all.
 *
 * - uncommitted bytes: every signed chunk PUT and pack PUT the server issues
 *   (prepareUpload, preparePack) and every staged resumable upload reserves
 *   its size (a row in the metadata store, so the bound holds across
 *   replicas) until a commit takes it in or the reservation expires (signed
 *   PUTs: the URL lifetime plus the upload window; staged uploads: their
 *   expiry). A tenant's reservations may not exceed its uncommitted quota
 *   (default {@link DEFAULT_UNCOMMITTED_QUOTA}); one request may not exceed
 *   the volume's cap, which is the most one commit could add.
 * - storage quota: the sum of a tenant's volumes' sizes, beside each
 *   volume's cap; unlimited unless the operator sets one.
 *
 * Going over either is QuotaExceeded (413) naming the quota and the sizes.
 */
import { QuotaExceededError } from '@stowage/sdk/common/errors.js';
import { formatSize, GiB } from '@stowage/sdk/common/sizes.js';
import type { MetadataOps } from '../stores/metadata-store.js';
import type { TenantRecord, VolumeRecord } from '@stowage/sdk/model/records.js';

/** Uncommitted bytes a tenant may have reserved when the operator set no quota. */
export const DEFAULT_UNCOMMITTED_QUOTA = 16 * GiB;

const both = (n: number) => `${formatSize(n)} (${n} bytes)`;

/**
 * Reserves `items` (object keys or upload ids with their sizes) for the
 * tenant against its quota; throws QuotaExceeded and keeps nothing reserved
 * when they do not fit. Keys must be fresh (never reserved before).
 */
export async function reserveUploads(
  md: Pick<MetadataOps, 'insertUploadReservations' | 'pendingUploadBytes' | 'releaseUploadReservations'>,
  tenant: TenantRecord,
  vol: VolumeRecord,
  items: ReadonlyArray<{ key: string; bytes: number }>,
  opts: { now: Date; expiresAt: Date; defaultQuota: number },
): Promise<void> {
  if (items.length === 0) return;
  const total = items.reduce((n, i) => n + i.bytes, 0);
  if (total > vol.cap) {
    throw new QuotaExceededError(
      `volume "${vol.name}" is capped at ${both(vol.cap)}; this request would upload ${both(total)} for it, which no commit could take in. Free space or raise the cap with: stowage volume resize ${vol.name} SIZE`,
      { details: { cap: vol.cap, size: total } },
    );
  }
  const quota = tenant.uncommittedQuota ?? opts.defaultQuota;
  // Insert, then sum (own rows included), and take back on excess: of any set of reservations that together
  // exceed the quota, the one summed last saw them all and was refused, so the bound holds across replicas
  // without a serialisable transaction (which concurrent writers of one tenant would keep aborting). Racing
  // requests near the quota may both be refused; a retry passes.
  const keys = items.map((i) => i.key);
  await md.insertUploadReservations(
    items.map((i) => ({
      key: i.key,
      tenantId: tenant.id,
      volumeId: vol.id,
      bytes: i.bytes,
      expiresAt: opts.expiresAt,
    })),
  );
  const pending = await md.pendingUploadBytes(tenant.id, opts.now);
  if (pending > quota) {
    await md.releaseUploadReservations(tenant.id, keys);
    const others = Math.max(0, pending - total);
    throw new QuotaExceededError(
      `tenant "${tenant.name}" may have at most ${both(quota)} uploaded but not yet committed; ${both(others)} are pending and this request asks for ${both(total)}. Commit what is pending (or let it expire) and try again`,
      { details: { quota, pending: others, size: total } },
    );
  }
}

/**
 * Refuses a change that would take the tenant's volumes together over its
 * storage quota: `from` bytes of one volume becoming `to`. Changes that do
 * not grow pass, so a tenant over its quota can still free space.
 */
export async function checkStorageQuota(
  md: Pick<MetadataOps, 'listVolumes'>,
  tenant: TenantRecord,
  change: { volume: string; from: number; to: number },
): Promise<void> {
  if (tenant.storageQuota === null || change.to <= change.from) return;
  const used = (await md.listVolumes(tenant.id)).reduce((n, v) => n + v.size, 0);
  const after = used - change.from + change.to;
  if (after <= tenant.storageQuota) return;
  throw new QuotaExceededError(
    `tenant "${tenant.name}" has a storage quota of ${both(tenant.storageQuota)}; this change to volume "${change.volume}" would make its volumes hold ${both(after)}. Free space (delete files, volumes or forks) or ask the operator to raise the quota`,
    { details: { quota: tenant.storageQuota, size: after } },
  );
}
