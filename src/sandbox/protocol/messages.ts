/**
 * @module sandbox/protocol/messages
 * What the supervisor asks of a sandbox's agent, and what the agent answers.
 * Types only for requests (the supervisor builds them); the agent's frames are
 * checked against these shapes by the supervisor (`agent-client.ts`), since
 * code inside the sandbox can speak in the agent's place.
 *
 * Requests carry `rid` (a request id the answer repeats); execs are named by
 * the `id` the host gave them, and their events carry it.
 */

export interface ExecRequest {
  op: 'exec';
  rid: number;
  /** The host's exec id; every event of this exec carries it. */
  id: string;
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Keep stdin open for `stdin` frames (otherwise it is /dev/null). */
  stdin?: boolean;
  /** Kill the whole process group after this many ms. */
  timeoutMs?: number;
  /** Run on a new pseudo-terminal of this size: stdout carries the terminal's output, stderr stays empty. */
  pty?: { rows: number; cols: number };
}

export type FileRequest =
  | { op: 'file.write'; rid: number; path: string; mode: number; createParents: boolean }
  | { op: 'file.data'; rid: number }
  | { op: 'file.end'; rid: number }
  | { op: 'file.read'; rid: number; path: string }
  | { op: 'file.stat'; rid: number; path: string }
  | { op: 'file.list'; rid: number; path: string }
  | { op: 'file.remove'; rid: number; path: string; recursive: boolean }
  | { op: 'file.mkdir'; rid: number; path: string; parents: boolean; mode: number };

export type AgentRequest =
  | ExecRequest
  | { op: 'stdin'; id: string }
  | { op: 'stdin.end'; id: string }
  | { op: 'signal'; id: string; signal: string; group: boolean }
  | { op: 'resize'; id: string; rows: number; cols: number }
  | FileRequest;

/** One entry of a directory listing or a stat. */
export interface AgentFileInfo {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtimeMs: number;
  uid: number;
  gid: number;
}

/** Error codes an agent answers with (an errno name for file system errors). */
export interface AgentError {
  code: string;
  message: string;
}
