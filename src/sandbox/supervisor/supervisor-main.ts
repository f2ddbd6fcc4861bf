/**
 * @module sandbox/supervisor/supervisor-main
 * Entry point of one sandbox's supervisor process:
 * `node supervisor-main.js <dataDir> <sandboxId>`. The host daemon starts it
 * detached (its own session, output to supervisor.log), so it and its
 * sandbox keep running when the daemon stops or restarts.
 *
 * It reads `spec.json`, starts the sandbox, serves its control socket, then
 * reports on file descriptor 3 (a pipe from the daemon) one JSON line,
 * `{"ready":true}` or `{"error":"why"}`, and closes it. It exits once the
 * sandbox has ended and been torn down. SIGTERM ends the sandbox cleanly.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { serveRuntimeOnSocket } from '../runtime-http/runtime-app.js';
import { SupervisorRuntime } from './supervisor-runtime.js';
import { type SupervisorSpec, readJsonFile, runPaths } from './supervisor-files.js';
import { Supervisor } from './supervisor.js';

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

/** Says how the start went on fd 3; the daemon may be gone, which changes nothing. */
function report(message: object): Promise<void> {
  return new Promise((resolve) => {
    let link: Socket;
    try {
      link = new Socket({ fd: 3, readable: false, writable: true });
    } catch {
      resolve();
      return;
    }
    link.on('error', () => resolve());
    link.end(`${JSON.stringify(message)}\n`, () => resolve());
  });
}

async function main(): Promise<void> {
  const [dataDir, id] = process.argv.slice(2);
  if (!dataDir || !id) throw new Error('usage: supervisor-main <dataDir> <sandboxId>');
  const paths = runPaths(dataDir, id);
  const spec = readJsonFile<SupervisorSpec>(paths.spec);
  if (!spec) throw new Error(`no spec at ${paths.spec}`);
  writeFileSync(paths.pid, `${process.pid}\n`);
  log(`starting sandbox ${id}`);
  let sup: Supervisor;
  try {
    sup = await Supervisor.start(spec, log);
  } catch (e) {
    log(`could not start: ${(e as Error).stack ?? e}`);
    await report({ error: (e as Error).message });
    process.exit(1);
  }
  const server = await serveRuntimeOnSocket(new SupervisorRuntime(sup), paths.socket);
  process.on('SIGTERM', () => void sup.terminate('the host stopped its supervisor (SIGTERM)'));
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  await report({ ready: true });
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
  await report({ error: (e as Error).message });
  process.exit(1);
});
