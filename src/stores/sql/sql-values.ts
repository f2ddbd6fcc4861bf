/**
 * @module sql-values
 * Column values <-> record values, per the conventions of schema.ts: times
 * are epoch milliseconds (numbers, or strings from PostgreSQL BIGINT), bytes
 * are Buffers to the drivers and Uint8Arrays to the contract.
 */
import { toNumber } from './schema.js';

export function ms(d: Date): number {
  return d.getTime();
}

export function msOrNull(d: Date | null): number | null {
  return d === null ? null : d.getTime();
}

export function date(v: number | string): Date {
  return new Date(toNumber(v));
}

export function dateOrNull(v: number | string | null): Date | null {
  return v === null ? null : date(v);
}

/** A Buffer view of the same bytes (no copy): both drivers bind Buffers as blobs. */
export function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A plain Uint8Array view of driver bytes (drivers return Buffers; the contract promises Uint8Array). */
export function toUint8Array(u: Uint8Array): Uint8Array {
  return new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
}
