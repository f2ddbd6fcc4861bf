/**
 * @module sandbox/agent/agent
 * The agent: the one process of Stowage inside a sandbox. It takes requests
 * from its supervisor over a stream (file descriptor 3, a socket the
 * supervisor made) and runs commands and file operations there. It imports
 * Node's built-ins and the protocol only, because it runs on the host's Node
 * bound read-only into an image that has none of the project.
 */
import { createReadStream } from 'node:fs';
import type { Duplex } from 'node:stream';
import { FrameDecoder, MAX_BODY_BYTES, encodeFrame, type Frame } from '../protocol/frames.js';
import type { AgentRequest, ExecRequest } from '../protocol/messages.js';
import { RunningExec } from './exec-runner.js';
import { AgentFileError, PendingWrite, checkPath, listDir, makeDir, removePath, statPath } from './file-ops.js';

export const AGENT_PROTOCOL_VERSION = 1;

export class Agent {
  readonly #execs = new Map<string, RunningExec>();
  readonly #writes = new Map<number, WriteSession>();
  readonly #decoder = new FrameDecoder();

  /** `ptyRelay`: the argv that starts the terminal relay, for `pty` execs (none: they are refused). */
  constructor(
    private readonly link: Duplex,
    private readonly ptyRelay?: readonly string[],
  ) {
    link.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.#decoder.push(chunk);
      } catch {
        link.destroy(); // the supervisor is trusted; garbage means the link is broken
        return;
      }
      for (const f of frames) this.#handle(f.header as unknown as AgentRequest, f.body);
    });
    link.on('drain', () => {
      for (const e of this.#execs.values()) e.resume();
    });
    this.#send({ ev: 'ready', version: AGENT_PROTOCOL_VERSION, pid: process.pid });
  }

  #send(header: object, body?: Buffer): boolean {
    if (this.link.destroyed) return false;
    return this.link.write(encodeFrame(header, body));
  }

  #answer(rid: number, work: Promise<unknown>): void {
    work.then(
      // The result travels as the body: a listing can be larger than a header may be.
      (result) => this.#send({ rid, ok: true }, Buffer.from(JSON.stringify(result ?? null))),
      (e: unknown) => this.#send({ rid, ok: false, error: errorOf(e) }),
    );
  }

  #handle(req: AgentRequest, body: Buffer): void {
    switch (req.op) {
      case 'exec':
        this.#exec(req);
        return;
      case 'stdin':
        this.#execs.get(req.id)?.writeStdin(body);
        return;
      case 'stdin.end':
        this.#execs.get(req.id)?.endStdin();
        return;
      case 'signal':
        this.#execs.get(req.id)?.signal(req.signal as NodeJS.Signals, req.group);
        return;
      case 'resize':
        this.#execs.get(req.id)?.resize(req.rows, req.cols);
        return;
      case 'file.write':
        this.#writes.set(req.rid, new WriteSession(PendingWrite.open(req.path, req.mode, req.createParents)));
        return;
      case 'file.data':
        this.#writes.get(req.rid)?.append(body);
        return;
      case 'file.end': {
        const session = this.#writes.get(req.rid);
        if (!session) return;
        this.#writes.delete(req.rid);
        session.finish().then(
          (size) => this.#send({ rid: req.rid, ok: true }, Buffer.from(JSON.stringify({ size }))),
          (e: unknown) => this.#send({ rid: req.rid, ok: false, error: errorOf(e) }),
        );
        return;
      }
      case 'file.read':
        this.#read(req.rid, req.path);
        return;
      case 'file.stat':
        this.#answer(req.rid, statPath(req.path));
        return;
      case 'file.list':
        this.#answer(req.rid, listDir(req.path));
        return;
      case 'file.remove':
        this.#answer(req.rid, removePath(req.path, req.recursive));
        return;
      case 'file.mkdir':
        this.#answer(req.rid, makeDir(req.path, req.parents, req.mode));
        return;
      default:
        this.#send({
          rid: (req as { rid?: number }).rid ?? 0,
          ok: false,
          error: { code: 'EINVAL', message: `unknown request ${(req as { op?: unknown }).op}` },
        });
    }
  }

  #exec(req: ExecRequest): void {
    if (this.#execs.has(req.id)) {
      this.#send({ rid: req.rid, ok: false, error: { code: 'EEXIST', message: `exec ${req.id} is running` } });
      return;
    }
    let exec: RunningExec;
    try {
      exec = this.#start(req);
    } catch (e) {
      this.#send({ rid: req.rid, ok: false, error: errorOf(e) });
      return;
    }
    this.#execs.set(req.id, exec);
  }

  #start(req: ExecRequest): RunningExec {
    return new RunningExec(
      req,
      {
        started: (pid) => {
          this.#send({ rid: req.rid, ok: true }, Buffer.from(JSON.stringify({ pid })));
        },
        output: (fd, data) => {
          let ok = true;
          for (let at = 0; at < data.length; at += MAX_BODY_BYTES)
            ok = this.#send({ ev: 'out', id: req.id, fd }, data.subarray(at, at + MAX_BODY_BYTES));
          return ok;
        },
        exited: (r) => {
          this.#execs.delete(req.id);
          this.#send({ ev: 'exit', id: req.id, code: r.code, signal: r.signal, timedOut: r.timedOut });
        },
        failed: (code, message) => {
          this.#execs.delete(req.id);
          this.#send({ rid: req.rid, ok: false, error: { code, message } });
        },
      },
      this.ptyRelay,
    );
  }

  #read(rid: number, path: string): void {
    let p: string;
    try {
      p = checkPath(path);
    } catch (e) {
      this.#send({ rid, ok: false, error: errorOf(e) });
      return;
    }
    const stream = createReadStream(p, { highWaterMark: 256 * 1024 });
    let size = 0;
    stream.on('data', (chunk) => {
      const data = chunk as Buffer; // no encoding was set
      size += data.length;
      if (!this.#send({ rid, data: true }, data)) {
        stream.pause();
        this.link.once('drain', () => stream.resume());
      }
    });
    stream.once('error', (e) => this.#send({ rid, ok: false, error: errorOf(e) }));
    stream.once('end', () => this.#send({ rid, ok: true }, Buffer.from(JSON.stringify({ size }))));
  }
}

/**
 * One file write as its frames arrive: pieces are appended in order, and the
 * first failure (opening, or any append) is kept and answered at the end, when
 * the temp file is removed.
 */
class WriteSession {
  #chain: Promise<void>;
  #error: unknown;

  constructor(private readonly opened: Promise<PendingWrite>) {
    this.#chain = opened.then(
      () => undefined,
      (e: unknown) => {
        this.#error = e;
      },
    );
  }

  append(data: Buffer): void {
    this.#chain = this.#chain.then(async () => {
      if (this.#error !== undefined) return;
      try {
        await (await this.opened).append(data);
      } catch (e) {
        this.#error = e;
      }
    });
  }

  async finish(): Promise<number> {
    await this.#chain;
    if (this.#error === undefined) return (await this.opened).commit();
    await this.opened.then(
      (pw) => pw.abort(),
      () => undefined,
    );
    throw this.#error;
  }
}

function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof AgentFileError) return { code: e.code, message: e.message };
  const err = e as NodeJS.ErrnoException;
  return { code: typeof err?.code === 'string' ? err.code : 'EIO', message: err?.message ?? String(e) };
}
