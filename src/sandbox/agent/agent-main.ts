/**
 * @module sandbox/agent/agent-main
 * Entry point of the agent inside a sandbox: its supervisor hands it a
 * connected socket as file descriptor 3. When that link closes, the
 * supervisor is gone and the agent exits.
 */
import { readlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { Agent } from './agent.js';

/**
 * How to start the terminal relay given as `--pty-relay=PATH`: through the
 * same dynamic loader and libraries as this Node when it was started by a
 * loader (in a sandbox, whose image may have no libc of its own).
 */
function ptyRelay(): string[] | undefined {
  const relay = process.argv.find((a) => a.startsWith('--pty-relay='))?.slice('--pty-relay='.length);
  if (!relay) return undefined;
  const exe = readlinkSync('/proc/self/exe');
  return basename(exe).startsWith('ld-') ? [exe, '--library-path', dirname(exe), relay] : [relay];
}

// Code in the sandbox runs as the agent's user. A change of effective uid marks the process non-dumpable
// (until it execs), so that code cannot ptrace the agent or read its /proc files (docs/sandboxes.md).
if (process.geteuid?.() === 0 && process.seteuid) {
  try {
    process.seteuid(65534);
    process.seteuid(0);
  } catch {
    // 65534 is not mapped here: the launch test notices an agent left dumpable.
  }
}

const link = new Socket({ fd: 3, readable: true, writable: true });
link.on('error', () => undefined);
link.on('close', () => process.exit(0));
new Agent(link, ptyRelay());
