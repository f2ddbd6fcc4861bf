/**
 * @module server/presenters
 * Engine records to wire shapes: Dates become ISO-8601 strings, branded ids
 * become plain strings, and commit summaries are flattened. Pure functions,
 * no decisions: what a caller may see was decided by the engine already.
 */
import type * as wire from '@stowage/sdk/api/wire.js';
import type { AttachmentView, CommitResult, MissingChunk, ReadPlan } from '../engine/types.js';
import type { ExecRecord, RuntimeFileInfo } from '../sandbox/runtime.js';
import type { SignedRequest } from '../stores/blob-store.js';
import type {
  CommitRecord,
  SandboxRecord,
  SnapshotRecord,
  TenantRecord,
  TokenRecord,
  VolumeRecord,
} from '@stowage/sdk/model/records.js';

const iso = (d: Date): string => d.toISOString();
const isoOrNull = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A volume record as the wire `Volume`. */
export function presentVolume(v: VolumeRecord): wire.Volume {
  return {
    id: v.id,
    name: v.name,
    accessMode: v.accessMode,
    cap: v.cap,
    size: v.size,
    fileCount: v.fileCount,
    tuning: {
      cacheSize: v.tuning.cacheSize,
      bufferSize: v.tuning.bufferSize,
      prefetch: v.tuning.prefetch,
      writeback: v.tuning.writeback,
    },
    head: v.head,
    createdAt: iso(v.createdAt),
    updatedAt: iso(v.updatedAt),
  };
}

/** A commit record as the wire `Commit` (summary fields flattened). */
export function presentCommit(c: CommitRecord): wire.Commit {
  return {
    id: c.id,
    volumeId: c.volumeId,
    seq: c.seq,
    parent: c.parent,
    tree: c.tree,
    message: c.message,
    author: c.author,
    size: c.size,
    fileCount: c.fileCount,
    changed: c.summary.changed,
    paths: [...c.summary.paths],
    overwritten: [...c.summary.overwritten],
    createdAt: iso(c.createdAt),
  };
}

/** The engine's commit result as the wire `CommitResponse`. */
export function presentCommitResult(r: CommitResult): wire.CommitResponse {
  return {
    commit: presentCommit(r.commit),
    overwritten: [...r.overwritten],
    skipped: r.skipped.map((s) => ({ index: s.index, path: s.path, reason: s.reason })),
  };
}

/** A snapshot record as the wire `Snapshot`. */
export function presentSnapshot(s: SnapshotRecord): wire.Snapshot {
  return { id: s.id, volumeId: s.volumeId, name: s.name, commit: s.commitId, createdAt: iso(s.createdAt) };
}

/** An attachment as the wire `Attachment` (its token id stays inside). */
export function presentAttachment(a: AttachmentView): wire.Attachment {
  return {
    id: a.id,
    volumeId: a.volumeId,
    volume: a.volumeName,
    host: a.host,
    path: a.path,
    readOnly: a.readOnly,
    state: a.state,
    reason: a.reason,
    createdAt: iso(a.createdAt),
    updatedAt: iso(a.updatedAt),
    leaseExpiresAt: iso(a.leaseExpiresAt),
  };
}

/** A tenant record as the wire `Tenant`. */
export function presentTenant(t: TenantRecord): wire.Tenant {
  return {
    id: t.id,
    name: t.name,
    defaultCap: t.defaultCap,
    createdAt: iso(t.createdAt),
    storageQuota: t.storageQuota,
    uncommittedQuota: t.uncommittedQuota ?? 0,
  };
}

/**
 * A token record as the wire `Token`, without its secret hash. `volume` is
 * the id of the volume a scoped token is limited to (the record holds the id,
 * not the name).
 */
export function presentToken(t: TokenRecord): wire.Token {
  return {
    id: t.id,
    name: t.name,
    volume: t.volumeId,
    readOnly: t.readOnly,
    createdAt: iso(t.createdAt),
    expiresAt: isoOrNull(t.expiresAt),
    revokedAt: isoOrNull(t.revokedAt),
  };
}

/** A store's signed request as the wire `SignedRequest`. */
export function presentSignedRequest(r: SignedRequest): wire.SignedRequest {
  return { url: r.url, method: r.method, headers: { ...r.headers }, expiresAt: iso(r.expiresAt) };
}

/** The engine's upload plan as the wire `UploadResponse`. */
export function presentUploadPlan(p: { missing: MissingChunk[]; present: number }): wire.UploadResponse {
  return {
    missing: p.missing.map((m) => ({
      hash: m.hash,
      size: m.size,
      key: m.key,
      request: presentSignedRequest(m.request),
    })),
    present: p.present,
  };
}

/** The engine's read plan as the wire `ReadPlan`. */
export function presentReadPlan(p: ReadPlan): wire.ReadPlan {
  return {
    commit: p.commit,
    entry: p.entry,
    chunks: p.chunks.map((c) => ({ hash: c.hash, size: c.size, request: presentSignedRequest(c.request) })),
  };
}

/** A sandbox record as the wire `Sandbox`: the environment's names only, never its values. */
export function presentSandbox(s: SandboxRecord): wire.Sandbox {
  return {
    id: s.id,
    status: s.status,
    reason: s.reason,
    image: s.image,
    volumes: s.volumes.map((v) => ({
      path: v.path,
      volume: v.volume,
      readOnly: v.readOnly,
      ...(v.subpath !== null ? { subpath: v.subpath } : {}),
      attachmentId: v.attachmentId,
    })),
    cpu: s.cpu,
    memoryMib: s.memoryMib,
    diskGib: s.diskGib,
    envNames: Object.keys(s.env).sort(),
    timeout: s.timeout,
    host: s.host,
    createdAt: iso(s.createdAt),
    expiresAt: iso(s.expiresAt),
    endedAt: isoOrNull(s.endedAt),
  };
}

/** A runtime's exec record as the wire `Exec` (timeout in seconds; the host-side pid stays on the host). */
export function presentExec(sandboxId: string, e: ExecRecord): wire.Exec {
  const extra = e as ExecRecord & { oomKilled?: boolean };
  return {
    id: e.id,
    sandboxId,
    argv: e.argv,
    ...(e.cwd !== undefined ? { cwd: e.cwd } : {}),
    background: e.background,
    pty: e.pty,
    ...(e.timeoutMs !== undefined ? { timeout: e.timeoutMs / 1000 } : {}),
    status: e.status,
    ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
    ...(e.signal !== undefined ? { signal: e.signal } : {}),
    ...(e.timedOut !== undefined ? { timedOut: e.timedOut } : {}),
    ...(extra.oomKilled !== undefined ? { oomKilled: extra.oomKilled } : {}),
    ...(e.error !== undefined ? { error: e.error } : {}),
    startedAt: e.startedAt,
    ...(e.endedAt !== undefined ? { endedAt: e.endedAt } : {}),
    stdoutBytes: e.stdoutBytes,
    stderrBytes: e.stderrBytes,
    dropped: { stdout: e.dropped.stdout, stderr: e.dropped.stderr },
  };
}

/** A file as a sandbox's agent reports it, as the wire `SandboxFileInfo`. */
export function presentSandboxFile(f: RuntimeFileInfo): wire.SandboxFileInfo {
  return {
    name: f.name,
    type: f.type,
    size: f.size,
    mode: f.mode,
    mtime: new Date(f.mtimeMs).toISOString(),
    uid: f.uid,
    gid: f.gid,
  };
}
