/**
 * @module mount/commit-builder
 * Turns a mount's overlay into one commit request: the journal's namespace
 * operations in order (so the server replays moves, deletes and mkdirs onto
 * whatever head is by then, merging with other mounts' commits), and a `put`
 * of every live local file at its final path with its final content.
 *
 * A file created here is also put where it was created, with its final
 * content, before any later rename of it: a rename of a path the server
 * does not have yet would otherwise be skipped, or worse, move another
 * mount's file of the same name. A file created and deleted again is put
 * empty and then deleted, which nets to nothing.
 *
 * Only the chunks of a local file that are dirty (or past its base chunks)
 * are hashed here; the rest keep their base hashes, and the upload step asks
 * the server which hashes it lacks. So a 1-byte change in a large file costs
 * one chunk, and an append after a full last chunk only the new tail.
 */
import { Readable } from 'node:stream';
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE, chunkCount, chunkLength, chunkSizeFor } from '@stowage/sdk/common/chunking.js';
import { sha256Hex, type ChunkRef } from '@stowage/sdk/client/chunker.js';
import type { PendingFile } from '@stowage/sdk/client/commit-writer.js';
import type { MountView } from './mount-view.js';
import { isAttached, pathOf, type FileNode, type Node, type NsTime } from './nodes.js';
import { journalTime, type JournalOp } from './overlay-store.js';
import { splitNanos } from '@stowage/sdk/common/times.js';

export interface BuiltCommit {
  changes: wire.Change[];
  files: PendingFile[];
  /** Chunks hashed from local bytes (the most that can need uploading). */
  localChunks: number;
}

/** Cuts and hashes one local file; base chunks keep their hashes. */
async function pendingFile(view: MountView, node: FileNode): Promise<{ file: PendingFile; localChunks: number }> {
  const local = node.local!;
  const shared = node.baseChunks.length > 0;
  const chunkSize = shared ? node.chunkSize : chunkSizeFor(node.size);
  const chunks: ChunkRef[] = [];
  const fromBase = new Set<number>();
  let localChunks = 0;
  for (let i = 0; i < chunkCount(node.size, chunkSize); i++) {
    const size = chunkLength(node.size, chunkSize, i);
    if (shared && i < node.baseChunks.length && !local.dirty.has(i)) {
      chunks.push({ hash: node.baseChunks[i]!, size, offset: i * chunkSize });
      fromBase.add(i);
    } else {
      const bytes = await view.content.localChunk(node, i, chunkSize);
      chunks.push({ hash: sha256Hex(bytes), size, offset: i * chunkSize });
      localChunks++;
    }
  }
  const file: PendingFile = {
    path: view.volumePath(pathOf(node)),
    size: node.size,
    chunkSize,
    chunks,
    mode: node.mode,
    mtime: splitNanos(node.mtime).ms,
    read: (c) => {
      const index = c.offset / chunkSize;
      // A base chunk the store lost (it should not): send it again from the cache or the base.
      if (fromBase.has(index))
        return Readable.from(
          (async function* () {
            yield await view.content.baseChunkBytes(node, index);
          })(),
        );
      return view.content.localChunkStream(local, c.offset, c.size);
    },
  };
  return { file, localChunks };
}

/** A node's owner and times as a change records them (mtime's whole milliseconds travel as `mtime`). */
function attrsOf(node: Node): wire.EntryAttributes {
  const a = splitNanos(node.atime);
  const c = splitNanos(node.ctime);
  return {
    mtimeNs: splitNanos(node.mtime).ns,
    atime: a.ms,
    atimeNs: a.ns,
    ctime: c.ms,
    ctimeNs: c.ns,
    ...(node.uid !== null ? { uid: node.uid } : {}),
    ...(node.gid !== null ? { gid: node.gid } : {}),
  };
}

function timeChange(t: NsTime | undefined, ms: 'mtime' | 'atime'): Record<string, number> {
  if (t === undefined) return {};
  const w = splitNanos(t);
  return { [ms]: w.ms, [`${ms}Ns`]: w.ns };
}

function putOf(file: PendingFile, path: string, attrs: wire.EntryAttributes | undefined): wire.Change {
  return {
    op: 'put',
    path,
    size: file.size,
    chunkSize: file.chunkSize,
    chunks: file.chunks.map((c) => c.hash),
    mode: file.mode ?? 0o644,
    mtime: file.mtime ?? Date.now(),
    ...attrs,
  };
}

/** The owner a new entry records: only a recorded one (null is the mount's owner, recorded as nothing). */
function owner(op: { uid?: number | null; gid?: number | null }): { uid?: number; gid?: number } {
  return { ...(op.uid != null ? { uid: op.uid } : {}), ...(op.gid != null ? { gid: op.gid } : {}) };
}

/** The commit the overlay amounts to; no changes when the overlay is clean. */
export async function buildCommit(view: MountView, journal: readonly JournalOp[]): Promise<BuiltCommit> {
  const files = new Map<string, PendingFile>();
  const attrs = new Map<PendingFile, wire.EntryAttributes>();
  let localChunks = 0;
  for (const [dataId, node] of view.localFiles) {
    if (!isAttached(node, view.root)) continue;
    const built = await pendingFile(view, node);
    files.set(dataId, built.file);
    attrs.set(built.file, attrsOf(node));
    localChunks += built.localChunks;
  }
  const vp = (p: string): string => view.volumePath(p);
  const changes: wire.Change[] = [];
  for (const op of journal) {
    switch (op.op) {
      case 'mkdir':
        changes.push({ op: 'mkdir', path: vp(op.path), mode: op.mode, ...owner(op) });
        break;
      case 'symlink':
        changes.push({ op: 'symlink', path: vp(op.path), target: op.target, ...owner(op) });
        break;
      case 'create': {
        const file = files.get(op.dataId);
        changes.push(
          file
            ? putOf(file, vp(op.path), attrs.get(file))
            : {
                op: 'put',
                path: vp(op.path),
                size: 0,
                chunkSize: SMALL_CHUNK_SIZE,
                chunks: [],
                mode: op.mode,
                ...owner(op),
              },
        );
        break;
      }
      case 'localize':
        break;
      case 'unlink':
      case 'rmdir':
        changes.push({ op: 'delete', path: vp(op.path) });
        break;
      case 'rename':
        changes.push({ op: 'move', from: vp(op.from), to: vp(op.to), overwrite: true });
        break;
      case 'chmod':
        changes.push({ op: 'setattr', path: vp(op.path), mode: op.mode });
        break;
      case 'chown':
        changes.push({
          op: 'setattr',
          path: vp(op.path),
          ...('uid' in op ? { uid: op.uid ?? null } : {}),
          ...('gid' in op ? { gid: op.gid ?? null } : {}),
        });
        break;
      case 'utimens':
        changes.push({
          op: 'setattr',
          path: vp(op.path),
          ...timeChange(journalTime(op.mtime), 'mtime'),
          ...timeChange(journalTime(op.atime), 'atime'),
        });
        break;
    }
  }
  // The last change to each path so far: a file created and left where it was needs no second, identical put.
  const last = new Map<string, wire.Change>();
  for (const c of changes) {
    if (c.op === 'move') {
      last.set(c.from, c);
      last.set(c.to, c);
    } else last.set(c.path, c);
  }
  for (const file of files.values()) {
    const put = putOf(file, file.path, attrs.get(file));
    if (JSON.stringify(last.get(file.path)) !== JSON.stringify(put)) changes.push(put);
  }
  return { changes, files: [...files.values()], localChunks };
}
