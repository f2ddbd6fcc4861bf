/**
 * @module s3-multipart
 * Puts of bodies larger than one part: the body is cut into parts as it
 * arrives (one part uploading while the next one fills, so a put holds at
 * most two parts in memory), and the upload is completed only once the whole
 * body has passed the meter; on any failure it is aborted, so an object whose
 * bytes break the put's terms never becomes visible.
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, type CompletedPart, type S3Client } from '@aws-sdk/client-s3';
import { InternalError, InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { BlobInfo } from '../blob-store.js';
import type { BodyMeter } from '../blob-store-checks.js';
import { sendS3 } from './s3-errors.js';

/** S3's largest number of parts per upload. */
const MAX_PARTS = 10_000;

/** Where a multipart put goes: the blob key (for messages) and its object key in the bucket. */
export interface MultipartTarget {
  client: S3Client;
  bucket: string;
  key: string;
  objectKey: string;
  partSize: number;
}

/** Sends `firstPart` and the rest of `reader` as one multipart upload; completes it only when the meter passes. */
export async function putMultipart(target: MultipartTarget, firstPart: Buffer, reader: PartReader, meter: BodyMeter): Promise<BlobInfo> {
  const { client, bucket, key, objectKey, partSize } = target;
  const what = `multipart put of blob "${key}"`;
  const created = await sendS3(client, (c) => c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: objectKey })), what);
  const uploadId = created.UploadId;
  if (!uploadId) throw new InternalError(`${what}: the object store returned no upload id`);
  const parts: CompletedPart[] = [];
  let inFlight: Promise<void> | undefined;
  const upload = (n: number, data: Buffer): Promise<void> =>
    sendS3(client, (c) => c.send(new UploadPartCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId, PartNumber: n, Body: data, ContentLength: data.byteLength })), what).then((r) => {
      parts[n - 1] = { PartNumber: n, ETag: r.ETag };
    });
  try {
    let n = 1;
    inFlight = upload(n, firstPart);
    for (;;) {
      const next = await reader.next();
      await inFlight; // at most one part uploading while the next fills
      inFlight = undefined;
      if (next.data.byteLength === 0 && !next.more) break;
      if (++n > MAX_PARTS) throw new InvalidArgumentError(`blob "${key}" needs more than ${MAX_PARTS} parts of ${partSize} bytes: raise partSize`);
      inFlight = upload(n, next.data);
      if (!next.more) {
        await inFlight;
        inFlight = undefined;
        break;
      }
    }
    meter.finish();
    await sendS3(client, (c) => c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId, MultipartUpload: { Parts: parts } })), what);
    return { key, size: meter.size, lastModified: new Date() };
  } catch (err) {
    await inFlight?.catch(() => undefined);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId })).catch(() => undefined);
    throw err;
  }
}

/** Cuts a metered body into parts of `limit` bytes; bytes read past a part's end start the next one. */
export class PartReader {
  readonly #chunks: AsyncGenerator<Uint8Array>;
  readonly #meter: BodyMeter;
  readonly #limit: number;
  #leftover: Uint8Array | undefined;
  #ended = false;

  constructor(chunks: AsyncGenerator<Uint8Array>, meter: BodyMeter, limit: number) {
    this.#chunks = chunks;
    this.#meter = meter;
    this.#limit = limit;
  }

  /** The next part (up to `limit` bytes) and whether the body may go on after it. */
  async next(): Promise<{ data: Buffer; more: boolean }> {
    const parts: Uint8Array[] = [];
    let size = 0;
    if (this.#leftover) {
      parts.push(this.#leftover);
      size = this.#leftover.byteLength;
      this.#leftover = undefined;
    }
    while (size < this.#limit && !this.#ended) {
      const { value, done } = await this.#chunks.next();
      if (done) {
        this.#ended = true;
        break;
      }
      this.#meter.add(value);
      parts.push(value);
      size += value.byteLength;
    }
    const data = concat(parts, size);
    if (size > this.#limit) {
      this.#leftover = data.subarray(this.#limit);
      return { data: data.subarray(0, this.#limit), more: true };
    }
    return { data, more: !this.#ended };
  }
}

function concat(parts: Uint8Array[], size: number): Buffer {
  if (parts.length === 1) return Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength);
  return Buffer.concat(parts, size);
}
