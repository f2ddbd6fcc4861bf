/**
 * @module sandbox/agent/agent-main
 * Entry point of the agent inside a sandbox: its supervisor hands it a
 * connected socket as file descriptor 3. When that link closes, the
 * supervisor is gone and the agent exits.
 */
import { Socket } from 'node:net';
import { Agent } from './agent.js';

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
new Agent(link);
