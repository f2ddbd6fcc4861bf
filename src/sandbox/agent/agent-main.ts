/**
 * @module sandbox/agent/agent-main
 * Entry point of the agent inside a sandbox: its supervisor hands it a
 * connected socket as file descriptor 3. When that link closes, the
 * supervisor is gone and the agent exits.
 */
import { Socket } from 'node:net';
import { Agent } from './agent.js';

const link = new Socket({ fd: 3, readable: true, writable: true });
link.on('error', () => undefined);
link.on('close', () => process.exit(0));
new Agent(link);
