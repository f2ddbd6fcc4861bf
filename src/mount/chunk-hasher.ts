/**
 * @module mount/chunk-hasher
 * SHA-256 of fetched chunks off the agent's main thread. The main thread
 * also receives chunk bytes and answers every FUSE read, and on a cold
 * sequential read it is the bottleneck; hashing a 64 MiB chunk there costs
 * ~50 ms during which no read is answered. Bytes in a SharedArrayBuffer (the
 * remote's pooled chunk buffers) go to one worker thread without a copy;
 * anything else, or anything small, is hashed in place.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Below this, a round trip to the worker costs more than the hash. */
const WORKER_MIN_BYTES = 1024 * 1024;

export class ChunkHasher {
  #worker: Worker | null = null;
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (hash: string) => void; reject: (e: Error) => void }>();

  async hash(bytes: Uint8Array): Promise<string> {
    if (!(bytes.buffer instanceof SharedArrayBuffer) || bytes.byteLength < WORKER_MIN_BYTES) {
      return createHash('sha256').update(bytes).digest('hex');
    }
    const worker = this.#start();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.byteLength });
    });
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    worker.unref(); // an idle hasher never keeps the agent alive
    worker.on('message', ({ id, hash }: { id: number; hash: string }) => {
      this.#waiting.get(id)?.resolve(hash);
      this.#waiting.delete(id);
    });
    const fail = (e: Error): void => {
      for (const w of this.#waiting.values()) w.reject(e);
      this.#waiting.clear();
      this.#worker = null;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the hashing worker exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    if (w) await w.terminate();
  }
}
