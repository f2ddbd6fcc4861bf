/**
 * @module s3-presign
 * Signed requests straight to the bucket (clients move chunk bytes without
 * the Stowage server). PUTs are presigned with `content-length` and, when
 * known, `x-amz-checksum-sha256` as signed headers, so S3 refuses any other
 * length or bytes; SignedRequest.headers lists both, and the client must send
 * them exactly. A GET signed for a byte range signs the `range` header the
 * same way, so the URL yields that range only (a chunk inside a pack).
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { SignedRequest, SignOptions } from '../blob-store.js';
import { checkSignOptions, rangeHeader } from '../blob-store-checks.js';

/** A signed `method` request for object `objectKey` of `bucket` (see BlobStore.sign for the terms). */
export async function presign(client: S3Client, bucket: string, objectKey: string, method: 'GET' | 'PUT', options: SignOptions): Promise<SignedRequest> {
  const { expiresIn, sha256, size, range } = checkSignOptions(method, options);
  const seconds = Math.max(1, Math.floor(expiresIn));
  const expiresAt = new Date(Date.now() + seconds * 1000);
  if (method === 'GET' && range !== undefined) {
    // The range is a signed header (not hoisted into the query): S3 refuses the request unless it carries exactly
    // this Range, so the URL yields these bytes and no others.
    const value = rangeHeader(range);
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: objectKey, Range: value }), {
      expiresIn: seconds, signableHeaders: new Set(['range']), unhoistableHeaders: new Set(['range']),
    });
    return { url, method, headers: { range: value }, expiresAt };
  }
  if (method === 'GET') {
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: objectKey }), { expiresIn: seconds });
    return { url, method, headers: {}, expiresAt };
  }
  const headers: Record<string, string> = {};
  const signable = new Set<string>();
  if (size !== undefined) {
    headers['content-length'] = String(size);
    signable.add('content-length');
  }
  let checksum: string | undefined;
  if (sha256 !== undefined) {
    checksum = Buffer.from(sha256, 'hex').toString('base64');
    headers['x-amz-checksum-sha256'] = checksum;
    signable.add('x-amz-checksum-sha256');
  }
  const command = new PutObjectCommand({
    Bucket: bucket,
    Key: objectKey,
    ...(size !== undefined ? { ContentLength: size } : {}),
    ...(checksum !== undefined ? { ChecksumSHA256: checksum } : {}),
  });
  const url = await getSignedUrl(client, command, {
    expiresIn: seconds,
    signableHeaders: signable,
    // Kept as headers (not hoisted into the query) so the store checks them against the body.
    unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
  });
  return { url, method, headers, expiresAt };
}
