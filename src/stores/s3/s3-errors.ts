/**
 * @module s3-errors
 * S3 failures in our vocabulary: the SDK's errors (status codes, S3 error
 * codes, network errors) become the StowageErrors of the BlobStore contract,
 * with a short reason that never includes a credential. The SDK's types stay
 * here and in the other s3 modules, never in our interfaces.
 */
import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { ForbiddenError, InternalError, InvalidArgumentError, NotFoundError, StowageError, UnauthenticatedError, UnavailableError } from '@stowage/sdk/common/errors.js';

/** The HTTP status of an SDK failure, when it got an answer. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata?.httpStatusCode;
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return meta?.httpStatusCode;
}

/** Names the SDK gives errors it could not read a code for (HEAD answers have no body). */
const GENERIC_NAMES = new Set(['Unknown', 'UnknownError', 'NotFound', 'Forbidden', 'BadRequest', 'MovedPermanently']);

/** A short reason for an S3 failure: the error code (NoSuchBucket, InvalidAccessKeyId…) or the network error, never a credential. */
export function describeS3Error(err: unknown): string {
  if (err instanceof StowageError) return err.message;
  const status = statusOf(err);
  const name = (err as { name?: string } | undefined)?.name;
  const code = (err as { code?: string } | undefined)?.code;
  if (status !== undefined) {
    // HEAD answers carry no body, so the SDK names the error after the status: give it a readable name.
    const byStatus: Record<number, string> = { 301: 'wrong region or endpoint (301 redirect)', 400: 'bad request (400)', 403: 'access denied: wrong credentials or no permission (403)', 404: 'NoSuchBucket (404)' };
    if (name && !GENERIC_NAMES.has(name) && !/^\d+$/.test(name)) return `${name} (${status})`;
    return byStatus[status] ?? `HTTP ${status}`;
  }
  if (code) return `${code}${err instanceof Error && err.message && !err.message.includes(code) ? `: ${err.message}` : ''}`;
  if (name === 'TimeoutError') return 'timed out';
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Maps an SDK failure to the StowageError of the contract. */
export function mapError(err: unknown, what: string, key?: string): StowageError {
  if (err instanceof StowageError) return err;
  const status = statusOf(err);
  const reason = describeS3Error(err);
  const message = what.includes(reason) ? what : `${what}: ${reason}`;
  const opts = { cause: err };
  if (status === 404 && key !== undefined) return new NotFoundError(`blob ${JSON.stringify(key)} not found`, opts);
  if (status === 404) return new NotFoundError(message, opts);
  if (status === 401 || (status === 403 && /InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken/.test(reason))) return new UnauthenticatedError(message, opts);
  if (status === 403) return new ForbiddenError(message, opts);
  if (status === 400 && /BadDigest|InvalidDigest|XAmzContentSHA256Mismatch|InvalidRequest/.test(reason)) return new InvalidArgumentError(message, opts);
  if (status === 416) return new InvalidArgumentError(message, opts);
  if (status === undefined || status === 408 || status === 429 || status >= 500) return new UnavailableError(message, opts);
  return new InternalError(message, opts);
}

/** Sends a command, mapping its failure to a StowageError naming `what`. */
export async function sendS3<O>(client: S3Client, run: (client: S3Client) => Promise<O>, what: string): Promise<O> {
  try {
    return await run(client);
  } catch (err) {
    throw mapError(err, what);
  }
}
