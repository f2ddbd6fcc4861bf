/**
 * Files in and out of a running sandbox, hop by hop: the same file written
 * and read back through the public API (SDK -> server -> supervisor ->
 * agent) and through the supervisor's socket alone (-> supervisor ->
 * agent), each by Stowage's own client (the SDK; the server's runtime
 * client) and by curl (which costs next to
 * nothing per byte), so a table shows what each layer costs. A real `stowage serve`
 * child process with this machine's sandbox host; this process is the
 * client. Needs root (as sandboxes do); the image comes from the shared test
 * cache.
 *
 *   npm run build && node dist/bench/sandbox-files.js [--size MiB] [--rounds N]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Sandbox, Stowage } from '@stowage/sdk';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { HttpSandboxRuntime } from '../src/sandbox/runtime-http/runtime-client.js';
import { runPaths } from '../src/sandbox/supervisor/supervisor-files.js';
import { TEST_IMAGES_DATA_DIR } from '../test/helpers/sandbox-images.js';
import { randomFile, run, startServerProcess, stopServer, type ServerProcess } from './bench-server.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} takes a positive integer`);
  return v;
}

const size = option('--size', 64) * MiB;
const rounds = option('--rounds', 3);

/** SHA-256 and length of a stream, drained as fast as it comes. */
async function digest(stream: AsyncIterable<unknown>): Promise<{ hex: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += (chunk as Buffer).length;
    h.update(chunk as Buffer);
  }
  return { hex: h.digest('hex'), bytes };
}

const enc = encodeURIComponent;

/** curl uploading a file: the reference client, which costs next to nothing per byte. */
async function curlPut(args: string[], from: string, url: string): Promise<void> {
  await run('curl', ['-sfS', '-o', '/dev/null', ...args, '-T', from, url], { timeoutMs: 120_000 });
}

/** curl downloading: its output as a stream (a failure shows as bytes that differ). */
function curlGet(args: string[], url: string): Readable {
  return spawn('curl', ['-sfS', ...args, url], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout;
}

interface Path {
  name: string;
  write(path: string, src: string): Promise<void>;
  read(path: string): Promise<AsyncIterable<unknown>>;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'stowage-bench-files-'));
  let server: ServerProcess | undefined;
  let sb: Sandbox | undefined;
  try {
    server = await startServerProcess(dataDir, ['--image-cache', TEST_IMAGES_DATA_DIR]);
    const client = new Stowage({ url: server.url, token: server.token });
    sb = await Sandbox.create({ client, image: { base: 'busybox' }, diskGib: 4, timeout: 1800 });
    const id = sb.id;
    const sock = runPaths(dataDir, id).socket;
    const auth = `Authorization: Bearer ${server.token}`;
    const socket = new HttpSandboxRuntime({ socketPath: sock }, '');
    const src = join(dataDir, 'src.bin');
    await randomFile(src, size);
    const want = await digest(createReadStream(src));
    const paths: Path[] = [
      {
        name: 'API: SDK -> server -> supervisor -> agent',
        write: async (p, from) => void (await sb!.write(p, createReadStream(from))),
        read: (p) => sb!.readStream(p),
      },
      {
        name: "supervisor's socket -> agent",
        write: async (p, from) =>
          void (await socket.writeFile(id, p, createReadStream(from) as Readable, {
            mode: 0o644,
            createParents: true,
          })),
        read: (p) => socket.readFile(id, p),
      },
      {
        name: 'curl -> server -> supervisor -> agent',
        write: (p, from) => curlPut(['-H', auth], from, `${server!.url}/v1/sandboxes/${id}/files?path=${enc(p)}`),
        read: async (p) => curlGet(['-H', auth], `${server!.url}/v1/sandboxes/${id}/files?path=${enc(p)}`),
      },
      {
        name: "curl -> supervisor's socket -> agent",
        write: (p, from) =>
          curlPut(['--unix-socket', sock], from, `http://supervisor/sandboxes/${id}/files?path=${enc(p)}&mode=420`),
        read: async (p) => curlGet(['--unix-socket', sock], `http://supervisor/sandboxes/${id}/files?path=${enc(p)}`),
      },
    ];
    const rows: string[] = [];
    for (const path of paths) {
      const w: number[] = [];
      const r: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        await path.write('/work/f.bin', src);
        w.push(performance.now() - t0);
        const t1 = performance.now();
        const got = await digest(await path.read('/work/f.bin'));
        r.push(performance.now() - t1);
        if (got.hex !== want.hex || got.bytes !== want.bytes)
          throw new Error(`${path.name}: the bytes read back differ`);
        await sb.remove('/work/f.bin');
      }
      const rate = (ms: number[]) => `${((size / MiB) * (1000 / Math.min(...ms))).toFixed(0)} MiB/s`;
      rows.push(`| ${path.name} | ${rate(w)} | ${rate(r)} |`);
    }
    const [one, five] = loadavg();
    console.log(
      `\n${size / MiB} MiB file, best of ${rounds}, load average ${one!.toFixed(1)} / ${five!.toFixed(1)}, SHA-256 checked\n`,
    );
    console.log(['| path | write | read |', '|---|---|---|', ...rows].join('\n'));
  } finally {
    await sb?.terminate().catch(() => undefined);
    if (server) await stopServer(server).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

await main();
