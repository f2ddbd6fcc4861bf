/**
 * @module wire/transfers
 * Bytes that move outside the API: signed blob-store requests, read plans and signed download URLs. Types only; re-exported by api/wire.
 */
import type { FileInfo } from './files.js';

/** A signed request a client makes directly to the blob store. */
export interface SignedRequest {
  url: string;
  method: 'GET' | 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
}

/** GET /v1/volumes/{name}/read?path=&commit= : where to fetch a file's bytes. */
export interface ReadPlan {
  commit: string;
  entry: FileInfo;
  chunks: Array<{ hash: string; size: number; request: SignedRequest }>;
}

/**
 * POST /v1/volumes/{name}/urls : a signed URL for one file that works without
 * a token (plain curl) until `expiresAt`. `expiresIn` is in seconds (default
 * 3600, at most 7 days). The URL is pinned to `commit` (head when absent):
 * it serves exactly the bytes that existed when it was signed.
 */
export interface SignedUrlRequest {
  path: string;
  expiresIn?: number;
  commit?: string;
}
export interface SignedUrlResponse {
  url: string;
  expiresAt: string;
  commit: string;
}
