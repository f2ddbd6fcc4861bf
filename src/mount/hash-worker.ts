/**
 * @module mount/hash-worker
 * Worker thread of chunk-hasher.ts: SHA-256 of a range of a shared buffer.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

interface Job {
  id: number;
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
}

parentPort?.on('message', (job: Job) => {
  const hash = createHash('sha256')
    .update(new Uint8Array(job.buffer, job.offset, job.length))
    .digest('hex');
  parentPort?.postMessage({ id: job.id, hash });
});
