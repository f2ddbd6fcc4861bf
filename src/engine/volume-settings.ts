/**
 * @module engine/volume-settings
 * The checks of what a tenant or operator may set on a tenant or volume
 * (caps, quotas, access mode, mount tuning), with the SPEC's defaults:
 * shared by the access service (tenants) and the volume service.
 */
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { GiB, MiB } from '@stowage/sdk/common/sizes.js';
import { ACCESS_MODES, type AccessMode, type MountTuning } from '@stowage/sdk/model/records.js';

/** Default volume cap (SPEC: 2 GiB). */
export const DEFAULT_CAP = 2 * GiB;
/** Default mount tuning (SPEC section 2). */
export const DEFAULT_TUNING: MountTuning = { cacheSize: 1 * GiB, bufferSize: 32 * MiB, prefetch: 0, writeback: false };
const MAX_CAP = 2 ** 50; // 1 PiB

export function checkCap(cap: number): number {
  if (!Number.isSafeInteger(cap) || cap < 1 || cap > MAX_CAP)
    throw new InvalidArgumentError(`cap must be a whole number of bytes between 1 and ${MAX_CAP}`);
  return cap;
}

export function checkQuota(quota: number | null, what: string): number | null {
  if (quota !== null && (!Number.isSafeInteger(quota) || quota < 0 || quota > MAX_CAP))
    throw new InvalidArgumentError(`${what} must be a whole number of bytes between 0 and ${MAX_CAP}`);
  return quota;
}

export function checkAccessMode(mode: string): AccessMode {
  if (!(ACCESS_MODES as readonly string[]).includes(mode))
    throw new InvalidArgumentError(`access mode must be one of ${ACCESS_MODES.join(', ')}`);
  return mode as AccessMode;
}

export function mergeTuning(base: MountTuning, patch: Partial<MountTuning> | undefined): MountTuning {
  const t = { ...base, ...(patch ?? {}) };
  for (const k of ['cacheSize', 'bufferSize', 'prefetch'] as const) {
    if (!Number.isSafeInteger(t[k]) || t[k] < 0)
      throw new InvalidArgumentError(`tuning.${k} must be a whole number >= 0`);
  }
  if (typeof t.writeback !== 'boolean') throw new InvalidArgumentError('tuning.writeback must be true or false');
  return t;
}
