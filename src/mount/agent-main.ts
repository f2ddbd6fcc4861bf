/**
 * @module mount/agent-main
 * The mount agent's process entry: `node agent-main.js <state dir>`. Started
 * detached by `stowage mount`, which waits on the IPC channel for "ready" (or
 * the error that kept the mount from starting) and then lets it go.
 * SIGTERM and SIGINT unmount and release the attachment; SIGKILL leaves the
 * overlay on disk for the next `stowage mount` of the same path.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MOUNT_CONFIG_FILE, type MountConfig } from '@stowage/sdk/common/mount-state.js';
import { MountAgent, asStowageError } from './agent.js';

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${message}\n`);
}

async function main(): Promise<void> {
  const stateDir = process.argv[2];
  if (!stateDir) throw new Error('usage: agent-main <state dir>');
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
