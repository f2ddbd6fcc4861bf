/**
 * @module model/object-keys
 * The blob-store keys of chunk bytes, built and parsed here only. Every
 * upload gets a fresh key (the content's SHA-256 plus 16 random hex
 * digits), so garbage collection deleting an old copy can never delete a
 * concurrent upload of the same content:
 *
 *   chunks/<first 2 hex of hash>/<chunk sha256>-<16 hex>   one chunk
 *   packs/<first 2 hex of sha256>/<pack sha256>-<16 hex>   many small chunks back to back
 */
import { randomHex } from '@stowage/sdk/common/ids.js';

/** What an object holds: one chunk, or a pack of chunks. */
export type ObjectKind = 'chunk' | 'pack';

const PREFIX: Readonly<Record<ObjectKind, string>> = { chunk: 'chunks/', pack: 'packs/' };
/** The key prefixes under which chunk bytes live (garbage collection lists these). */
export const OBJECT_KEY_PREFIXES: readonly string[] = Object.values(PREFIX);
const KEY = /^(chunks|packs)\/([0-9a-f]{2})\/([0-9a-f]{64})-[0-9a-f]{16}$/;

/** A fresh object key for one upload of a chunk (by its hash) or of a pack (by the pack's SHA-256). */
export function newObjectKey(kind: ObjectKind, sha256: string): string {
  return `${PREFIX[kind]}${sha256.slice(0, 2)}/${sha256}-${randomHex(8)}`;
}

/** The kind and SHA-256 a key was issued for, or undefined when it is not a key this server issues. */
export function parseObjectKey(key: string): { kind: ObjectKind; sha256: string } | undefined {
  const m = KEY.exec(key);
  if (!m || m[2] !== m[3]!.slice(0, 2)) return undefined;
  return { kind: m[1] === 'packs' ? 'pack' : 'chunk', sha256: m[3]! };
}

/** Whether an object holds many chunks (so a read of one chunk must be ranged, even at offset 0). */
export function isPackKey(key: string): boolean {
  return key.startsWith(PREFIX.pack);
}
