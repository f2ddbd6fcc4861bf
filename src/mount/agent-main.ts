/**
 * @module mount/agent-main
 * The mount agent's process entry: `node agent-main.js <state dir>`. Started
 * detached by `stowage mount`, which waits on the IPC channel for "ready" (or
 * the error that kept the mount from starting) and then lets it go.
 *
 * `node agent-main.js --spare` loads everything, says `{ waiting: true }` and
 * waits for its state dir as one IPC message (`{ stateDir }`), then runs the
 * same way, logging to that
 * state dir's agent.log: a sandbox's supervisor keeps one ready so a volume
 * does not wait for Node to start (about 0.2 s). A spare whose parent goes
 * first exits.
 * SIGTERM and SIGINT unmount and release the attachment; SIGKILL leaves the
 * overlay on disk for the next `stowage mount` of the same path.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_LOG, MOUNT_CONFIG_FILE, type MountConfig } from '@stowage/sdk/common/mount-state.js';
import { MountAgent, asStowageError } from './agent.js';

/** A spare's log file, opened once it knows its state dir (a plain start's stderr is that file already). */
let logFd: number | undefined;

function log(message: string): void {
  const line = `${new Date().toISOString()} ${message}\n`;
  if (logFd !== undefined) writeSync(logFd, line);
  else process.stderr.write(line);
}

/** A spare's state dir, sent by its parent; a parent that goes first ends the spare. */
function assignment(): Promise<string> {
  return new Promise((resolve) => {
    process.once('disconnect', () => process.exit(0));
    process.once('message', (m: { stateDir?: unknown }) => {
      if (typeof m?.stateDir !== 'string') process.exit(2);
      resolve(m.stateDir);
    });
    // Messages sent before a listener is there are lost: the parent hands a state dir only after this.
    process.send?.({ waiting: true });
  });
}

async function main(): Promise<void> {
  const spare = process.argv[2] === '--spare';
  const stateDir = spare ? await assignment() : process.argv[2];
  if (!stateDir) throw new Error('usage: agent-main <state dir | --spare>');
  if (spare) {
    process.removeAllListeners('disconnect');
    logFd = openSync(join(stateDir, AGENT_LOG), 'a', 0o600);
    process.on('exit', () => logFd !== undefined && closeSync(logFd));
  }
  const config = JSON.parse(readFileSync(join(stateDir, MOUNT_CONFIG_FILE), 'utf8')) as MountConfig;
  let agent: MountAgent;
  try {
    agent = await MountAgent.start(config, stateDir, log);
  } catch (e) {
    const err = asStowageError(e);
    log(`mount failed: ${err.message}`);
    process.send?.({ ok: false, error: { code: err.code, message: err.message } });
    process.exitCode = 1;
    return;
  }
  log(
    `mounted ${config.volume}${config.subpath === '/' ? '' : ':' + config.subpath} at ${config.mountPath}${config.readOnly ? ' (read-only)' : ''}`,
  );
  agent.onExit = () => process.exit(0);
  const shutdown = (signal: string): void => {
    log(`${signal}: unmounting`);
    void agent.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.send?.({ ok: true, pid: process.pid });
  if (process.connected) process.disconnect();
}

main().catch((e) => {
  log(`agent crashed: ${(e as Error)?.stack ?? String(e)}`);
  process.exit(1);
});
