/**
 * @module sandbox/supervisor/supervisor-main
 * Entry point of one sandbox's supervisor process:
 * `node supervisor-main.js <dataDir> <sandboxId>`. The host daemon starts it
 * detached (its own session), so it and its sandbox keep running when the
 * daemon stops or restarts.
 *
 * With `--spare JSON` instead of an id it loads everything and waits: the
 * daemon keeps a few such spares so a create does not wait for Node to start
 * (a third of a second); it sends the id as one JSON line on file descriptor
 * 3 (a socket pair), and a spare whose daemon goes away before that removes
 * what it made and exits. While it waits it formats a state disk of the usual
 * size (SpareOrder.diskGib) and, given an image, prepares a whole sandbox on
 * it (prepared-sandbox), taken when the sandbox asks for that image and size;
 * last, unless a create came meanwhile, it starts a mount agent that waits,
 * loaded, for the sandbox's first volume.
 *
 * It reads `spec.json`, starts the sandbox, serves its control socket, then
 * reports on file descriptor 3 one JSON line, `{"ready":true}` or
 * `{"error":"why"}`, and closes it. It logs to the run's supervisor.log. It
 * exits once the sandbox has ended and been torn down. SIGTERM ends the
 * sandbox cleanly.
 */
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { formatDiskImage } from '../host/state-disk.js';
import { NotFoundError } from '@stowage/sdk/common/errors.js';
import { HttpSandboxRuntime } from '../runtime-http/runtime-client.js';
import type { SandboxRuntime } from '../runtime.js';
import { PreparedSandbox } from './prepared-sandbox.js';
import { serveRuntimeOnSocket } from '../runtime-http/runtime-app.js';
import { SupervisorRuntime } from './supervisor-runtime.js';
import { readJsonFile } from '../../common/json-file.js';
import { SPARES_DIR, type SpareOrder, type SupervisorSpec, runPaths, spareSlot } from './supervisor-files.js';
import { type SpareParts, Supervisor } from './supervisor.js';
import { spawnSpareMountAgent } from '../../mount/agent-launch.js';

/** Where log lines go: stdout until the sandbox is known, then its own supervisor.log. */
let logFile: string | undefined;

function log(line: string): void {
  const text = `${new Date().toISOString()} ${line}\n`;
  if (logFile) appendFileSync(logFile, text);
  else process.stdout.write(text);
}

/** The link to the daemon on fd 3 (a socket pair), or undefined when there is none. */
function daemonLink(): Socket | undefined {
  try {
    const link = new Socket({ fd: 3, readable: true, writable: true });
    link.on('error', () => undefined);
    return link;
  } catch {
    return undefined;
  }
}

/** Says how the start went; the daemon may be gone, which changes nothing. */
function report(link: Socket | undefined, message: object): Promise<void> {
  return new Promise((resolve) => {
    if (!link || link.destroyed) return resolve();
    link.once('error', () => resolve());
    link.end(`${JSON.stringify(message)}\n`, () => resolve());
  });
}

/**
 * A spare waits for the id of the sandbox it is to run (one JSON line); if the daemon goes first it runs
 * `orphaned` and exits.
 */
function awaitAssignment(link: Socket | undefined, orphaned: () => Promise<void>): Promise<string> {
  return new Promise((resolve) => {
    if (!link) process.exit(2);
    let text = '';
    const onEnd = () => void orphaned().finally(() => process.exit(0));
    const onData = (b: Buffer) => {
      text += b.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl === -1) return;
      link.off('data', onData);
      link.off('end', onEnd);
      link.pause();
      assignedYet = true;
      resolve((JSON.parse(text.slice(0, nl)) as { id: string }).id);
    };
    link.on('data', onData);
    link.once('end', onEnd);
  });
}

let link: Socket | undefined;
/** Set once a spare knows its sandbox. */
let assignedYet = false;

/** A spare formats a state disk of the usual size while it waits (removed if it exits unused). */
async function spareDisk(dataDir: string, diskGib: number): Promise<{ path: string; diskGib: number } | undefined> {
  const dir = join(dataDir, SPARES_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `disk-${process.pid}.img`);
  process.on('exit', () => rmSync(path, { force: true }));
  try {
    await formatDiskImage(path, diskGib);
    return { path, diskGib };
  } catch (e) {
    log(`spare disk not made: ${(e as Error).message}`);
    rmSync(path, { force: true });
    return undefined;
  }
}

/** What a spare makes while it waits: a formatted disk, and on it a prepared sandbox of the order's image. */
async function prepareSpare(dataDir: string, order: SpareOrder): Promise<SpareParts> {
  const disk = await spareDisk(dataDir, order.diskGib);
  const parts = await prepareSandbox(dataDir, order, disk);
  // Then one mount agent waits, loaded, for the sandbox's first volume (the most common case is one); started
  // last, and only if no create has come meanwhile, so a create waiting for this spare does not wait for it too.
  if (!assignedYet) parts.mountAgents = [spawnSpareMountAgent()];
  return parts;
}

/** The spare's prepared sandbox of the order's image on its formatted disk, or just the disk. */
async function prepareSandbox(
  dataDir: string,
  order: SpareOrder,
  disk: { path: string; diskGib: number } | undefined,
): Promise<SpareParts> {
  if (!disk || !order.image) return disk ? { disk } : {};
  try {
    const sandbox = await PreparedSandbox.prepare({
      dataDir,
      slot: spareSlot(process.pid),
      imageRoot: order.image.root,
      diskGib: disk.diskGib,
      ids: order.image.ids,
      formattedDisk: disk.path,
    });
    await sandbox.warmUp();
    return { sandbox };
  } catch (e) {
    log(`spare sandbox not prepared: ${(e as Error).message}`);
    return {};
  }
}

/**
 * A spare runs its control API once on a throwaway socket, against a runtime that knows no sandbox, so the
 * first real calls (create's first exec) do not pay for compiling the HTTP and routing code (20-30 ms).
 */
async function warmUp(dataDir: string): Promise<void> {
  const socket = join(dataDir, SPARES_DIR, `warm-${process.pid}.sock`);
  const none = new Proxy({} as SandboxRuntime, {
    get: (_, key) => {
      if (key === 'host') return 'warm-up';
      if (key === 'unavailable' || key === 'onEnded') return () => undefined;
      return async () => {
        throw new NotFoundError('warm-up');
      };
    },
  });
  const server = await serveRuntimeOnSocket(none, socket);
  try {
    const client = new HttpSandboxRuntime({ socketPath: socket }, 'warm-up');
    await client.exec('sb_warm', { argv: ['true'] }).catch(() => undefined);
    await client.execs('sb_warm').catch(() => undefined);
    await client.state('sb_warm').catch(() => undefined);
  } finally {
    server.close();
    server.closeAllConnections?.();
    rmSync(socket, { force: true });
  }
}

async function main(): Promise<void> {
  const [dataDir, which, orderJson] = process.argv.slice(2);
  if (!dataDir || !which) throw new Error('usage: supervisor-main <dataDir> <sandboxId | --spare ORDER_JSON>');
  link = daemonLink();
  const order = which === '--spare' ? (JSON.parse(orderJson ?? '{}') as SpareOrder) : undefined;
  const spare = order ? prepareSpare(dataDir, order) : undefined;
  // Listening from the start: a daemon that goes while the spare warms up must still be noticed.
  const assigned = spare
    ? awaitAssignment(link, async () => {
        await (await spare)?.sandbox?.discard().catch((e: unknown) => log(`discarding the spare's sandbox: ${e}`));
      })
    : undefined;
  if (spare) await warmUp(dataDir).catch((e: unknown) => log(`warm-up failed: ${e}`));
  const id = assigned ? await assigned : which;
  const paths = runPaths(dataDir, id);
  logFile = paths.log;
  const spec = readJsonFile<SupervisorSpec>(paths.spec);
  if (!spec) throw new Error(`no spec at ${paths.spec}`);
  writeFileSync(paths.pid, `${process.pid}\n`);
  log(`starting sandbox ${id}`);
  let sup: Supervisor;
  try {
    sup = await Supervisor.start(spec, log, await spare);
  } catch (e) {
    log(`could not start: ${(e as Error).stack ?? e}`);
    await report(link, { error: (e as Error).message });
    process.exit(1);
  }
  const server = await serveRuntimeOnSocket(new SupervisorRuntime(sup), paths.socket);
  process.on('SIGTERM', () => void sup.terminate('the host stopped its supervisor (SIGTERM)'));
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  await report(link, { ready: true });
  log(`sandbox ${id} is running`);
  const final = await sup.ended;
  log(`sandbox ${id} ended: ${final.status} (${final.reason ?? ''})`);
  // Let the answers of calls that ended it (terminate) go out before the socket goes.
  await new Promise((resolve) => setTimeout(resolve, 200));
  server.close();
  server.closeAllConnections?.();
  rmSync(paths.socket, { force: true });
  process.exit(0);
}

main().catch(async (e: unknown) => {
  log(`supervisor failed: ${(e as Error).stack ?? e}`);
  await report(link, { error: (e as Error).message });
  process.exit(1);
});
