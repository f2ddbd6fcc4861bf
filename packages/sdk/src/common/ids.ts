/**
 * @module ids
 * Every identifier has its own branded type with a parse helper, so a commit
 * id can never be passed where a volume id is expected.
 *
 * - TenantId, VolumeId, TokenId, SnapshotId, AttachmentId, SandboxId: random, prefixed (`ten_`, `vol_`, `tok_`,
 *   `snap_`, `att_`, `sb_`).
 * - CommitId, TreeHash: SHA-256 of versioned canonical content (hex, 64 chars).
 * - ChunkHash: SHA-256 of the chunk bytes (hex, 64 chars).
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };
/** A branded id as the plain string it is on the wire (other strings, literal types included, stay as they are). */
export type PlainId<T extends string> = T extends Brand<string, string> ? string : T;

export type TenantId = Brand<string, 'TenantId'>;
export type VolumeId = Brand<string, 'VolumeId'>;
export type TokenId = Brand<string, 'TokenId'>;
export type SnapshotId = Brand<string, 'SnapshotId'>;
export type AttachmentId = Brand<string, 'AttachmentId'>;
export type SandboxId = Brand<string, 'SandboxId'>;
export type CommitId = Brand<string, 'CommitId'>;
export type TreeHash = Brand<string, 'TreeHash'>;
export type ChunkHash = Brand<string, 'ChunkHash'>;

const HEX64 = /^[0-9a-f]{64}$/;
const RANDOM_ID = /^[a-z]+_[0-9a-z]{20}$/;

/** 20 lowercase base-36 characters: ~103 bits of randomness. */
function randomSuffix(): string {
  const bytes = randomBytes(20);
  let out = '';
  for (const b of bytes) out += (b % 36).toString(36);
  return out;
}

function makeRandom<T>(prefix: string): T {
  return `${prefix}_${randomSuffix()}` as T;
}

function parseRandom<T>(prefix: string, kind: string, s: string): T {
  if (!RANDOM_ID.test(s) || !s.startsWith(`${prefix}_`))
    throw new InvalidArgumentError(`invalid ${kind} id: ${JSON.stringify(s.slice(0, 80))}`);
  return s as T;
}

function parseHex<T>(kind: string, s: string): T {
  if (!HEX64.test(s)) throw new InvalidArgumentError(`invalid ${kind}: expected 64 lowercase hex characters`);
  return s as T;
}

export const TenantId = {
  new: () => makeRandom<TenantId>('ten'),
  parse: (s: string) => parseRandom<TenantId>('ten', 'tenant', s),
};
export const VolumeId = {
  new: () => makeRandom<VolumeId>('vol'),
  parse: (s: string) => parseRandom<VolumeId>('vol', 'volume', s),
};
export const TokenId = {
  new: () => makeRandom<TokenId>('tok'),
  parse: (s: string) => parseRandom<TokenId>('tok', 'token', s),
};
export const SnapshotId = {
  new: () => makeRandom<SnapshotId>('snap'),
  parse: (s: string) => parseRandom<SnapshotId>('snap', 'snapshot', s),
};
export const AttachmentId = {
  new: () => makeRandom<AttachmentId>('att'),
  parse: (s: string) => parseRandom<AttachmentId>('att', 'attachment', s),
};
export const SandboxId = {
  new: () => makeRandom<SandboxId>('sb'),
  parse: (s: string) => parseRandom<SandboxId>('sb', 'sandbox', s),
};
export const CommitId = { parse: (s: string) => parseHex<CommitId>('commit id', s), is: (s: string) => HEX64.test(s) };
export const TreeHash = { parse: (s: string) => parseHex<TreeHash>('tree hash', s) };
export const ChunkHash = {
  parse: (s: string) => parseHex<ChunkHash>('chunk hash', s),
  is: (s: string) => HEX64.test(s),
};

/** Random lowercase hex, for upload ids and secrets that are not ids. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}
