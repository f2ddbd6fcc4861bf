/**
 * @module test/helpers/moto
 * A real S3-compatible endpoint for tests: `moto_server` (Python moto,
 * preinstalled on the project's machines; setup.sh says when it is missing)
 * on 127.0.0.1 and a free
 * port, killed on stop. There is no silent skip: a missing moto_server is an
 * error that says how to install it.
 *
 * moto accepts any credentials and, unlike AWS, checks neither presigned
 * signatures and expiries nor x-amz-checksum-sha256 (see docs/operations.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { freePort } from './free-port.js';

/** Credentials moto accepts (it accepts any). */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing-key-id', secretAccessKey: 'testing-secret-key' } as const;
export const MOTO_REGION = 'us-east-1';

/** A running moto server. */
export interface Moto {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts moto_server and waits until it answers.
 *
 * @example
 * const moto = await startMoto();
 * const bucket = await createBucket(moto.endpoint);
 * await moto.stop();
 */
export async function startMoto(): Promise<Moto> {
  const bin = process.env.MOTO_SERVER ?? 'moto_server';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  let exited: { code: number | null; error?: Error } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      exited = { code: null, error };
      resolve();
    });
    child.once('exit', (code) => {
      exited ??= { code };
      resolve();
    });
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      if (exited.error && (exited.error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(
          `cannot start the test S3 server: "${bin}" is not on PATH. Install moto with its server extra (pip install 'moto[server]') or set MOTO_SERVER to its path.`,
        );
      }
      throw new Error(`moto_server exited (code ${exited.code}) before answering: ${exited.error?.message ?? stderr}`);
    }
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server did not answer at ${endpoint} within 30 s: ${stderr}`);
      }
      await sleep(100);
    }
  }
  return {
    endpoint,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exitPromise;
        clearTimeout(timer);
      }
    },
  };
}

/** An S3 client for a moto endpoint (path style, test credentials). */
export function motoClient(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: MOTO_REGION, forcePathStyle: true, credentials: { ...MOTO_CREDENTIALS } });
}

/** Creates a bucket with a fresh name; returns the name. */
export async function createBucket(endpoint: string, prefix = 'stowage-test'): Promise<string> {
  const name = `${prefix}-${randomBytes(6).toString('hex')}`;
  const client = motoClient(endpoint);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}

/** Empties and deletes a bucket. */
export async function deleteBucket(endpoint: string, bucket: string): Promise<void> {
  const client = motoClient(endpoint);
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) break;
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** The `s3://` URL of a bucket at a moto endpoint, with test credentials. */
export function motoBlobUrl(endpoint: string, bucket: string, extra: Record<string, string> = {}): string {
  const { accessKeyId, secretAccessKey } = MOTO_CREDENTIALS;
  const q = new URLSearchParams({
    endpoint,
    region: MOTO_REGION,
    forcePathStyle: 'true',
    accessKeyId,
    secretAccessKey,
    ...extra,
  });
  return `s3://${bucket}?${q.toString()}`;
}

/**
 * Passes one request on to `target` unchanged and pipes the answer back: the
 * pass-through of the test proxies put in front of moto. `body` when the
 * proxy already read it, else the request itself is piped.
 */
export function forwardTo(target: URL, req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
  const up = httpRequest(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  if (body === undefined) req.pipe(up);
  else up.end(body);
}

/** Starts `server` on a free loopback port and returns its http:// URL. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
