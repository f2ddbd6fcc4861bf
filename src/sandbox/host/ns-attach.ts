/**
 * @module sandbox/host/ns-attach
 * Gives a running sandbox its host name and bind mounts after it started,
 * through native/ns-attach (`stowage-attach`, run as host root): sandboxes
 * are launched before the request that will use them (spare supervisors keep
 * one running), so its volumes reach the sandbox's existing mount namespace
 * rather than bwrap's command line. Each bind is nosuid and nodev, read-only
 * when asked; missing mount points are made as the sandbox's root.
 */
import { nativeBuild } from '../../common/package-root.js';
import { runOk } from './host-command.js';
import type { IdRange } from './launch-args.js';

/** A host path (a directory or a file) to appear at `target` inside the sandbox. */
export interface SandboxBind {
  source: string;
  target: string;
  readOnly: boolean;
}

/** The helper built from native/ns-attach. */
export function nsAttachPath(): string {
  return nativeBuild('ns-attach', 'stowage-attach', 'attaching volumes to sandboxes needs gcc and make');
}

/**
 * Sets the host name of the sandbox whose first process is `pid` (host pid namespace) and mounts `binds`
 * in it, in order. Rejects with the helper's message when one fails (what it did before stays).
 */
export async function attachToSandbox(
  pid: number,
  ids: IdRange,
  what: { hostname?: string; binds?: readonly SandboxBind[] },
): Promise<void> {
  const argv = [nsAttachPath(), String(pid), String(ids.hostUid), String(ids.hostGid)];
  if (what.hostname !== undefined) argv.push('--hostname', what.hostname);
  for (const b of what.binds ?? []) argv.push(b.readOnly ? '--ro-bind' : '--bind', b.source, b.target);
  await runOk(argv, 'attaching to the sandbox');
}
