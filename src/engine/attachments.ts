/**
 * @module engine/attachments
 * Attachments: the control plane's record of mounts, and the scoped, leased
 * tokens mounts run on (SPEC sections 1 and 2, "Access modes").
 *
 * - A mount never holds the tenant's token. Attaching mints a token scoped to
 *   the one volume (read-only for a read-only attachment), tied to the
 *   attachment, expiring with its lease; renewing extends both, releasing
 *   revokes the token. A mount token cannot attach again or mint tokens, so
 *   code inside a sandbox cannot widen what it was given.
 * - Leases: an agent that stops renewing (crash, lost network) must not hold
 *   an RWO volume forever. A mounted attachment whose lease is past counts as
 *   gone for the access mode, and is marked failed (its token revoked) the
 *   next time its volume's attachments are looked at.
 * - The access-mode check and the insert run in one metadata transaction, so
 *   two concurrent read-write attaches of an RWO volume cannot both win.
 *   Refusals are returned out of the transaction rather than thrown in it, so
 *   the lease-expiry marks written on the way are kept.
 */
import {
  ConflictError,
  ForbiddenError,
  InvalidArgumentError,
  NotFoundError,
  ReadOnlyError,
} from '@stowage/sdk/common/errors.js';
import { AttachmentId, type TenantId, type TokenId, type VolumeId } from '@stowage/sdk/common/ids.js';
import { authorize, tokenKind } from './authority.js';
import type { MetadataOps, MetadataStore } from '../stores/metadata-store.js';
import type { AttachmentRecord, TokenRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import type { Actor, AttachmentView, AttachRequest, AttachResult, ReleaseRequest } from './types.js';

/** Default lease of a mounted attachment (and its token), in ms; the agent renews well before. */
export const DEFAULT_ATTACHMENT_LEASE = 60_000;
export const LEASE_EXPIRED = 'lease expired: the mount agent stopped renewing';
export const VOLUME_DELETED = 'volume deleted';
const MAX_HOST = 253;
const MAX_MOUNT_PATH_BYTES = 4096;
const MAX_REASON = 1000;
/** Shown as the volume name of an attachment whose volume no longer exists. */
const DELETED_VOLUME_NAME = '(deleted)';

/** What attachments need of the engine. */
export interface AttachmentHost {
  md: MetadataStore;
  now: () => Date;
  /** Lease length in ms. */
  lease: number;
  volumeFor(actor: Actor, name: string, access: 'read' | 'write'): Promise<VolumeRecord>;
  /** A new token record and its bearer secret (not stored yet); `parentId` is the token it dies with. */
  newToken(
    tenantId: TenantId,
    name: string,
    volumeId: VolumeId,
    readOnly: boolean,
    expiresAt: Date,
    attachmentId: AttachmentId,
    parentId: TokenId,
  ): { token: TokenRecord; bearer: string };
}

/** A transaction's answer: a value, or the error to throw once the transaction has committed. */
type Outcome<T> = { ok: T } | { refused: Error };

async function settle<T>(md: MetadataStore, fn: (tx: MetadataOps) => Promise<Outcome<T>>): Promise<T> {
  const out = await md.transaction(fn);
  if ('refused' in out) throw out.refused;
  return out.ok;
}

/** A lease from now, cut short where the parent token expires first: a mount token never outlives its creator. */
function leaseEnd(now: Date, lease: number, parent: TokenRecord | undefined): Date {
  const end = now.getTime() + lease;
  return new Date(parent?.expiresAt ? Math.min(end, parent.expiresAt.getTime()) : end);
}

/** Mounts' records and tokens: attach, renew, release, list (the functions above are its rules). */
export class AttachmentService {
  constructor(private readonly host: AttachmentHost) {}

  /** Mounts `volume` at host:path: checks the access mode, records the attachment and mints its token. */
  async attach(actor: Actor, volume: string, req: AttachRequest): Promise<AttachResult> {
    // Resuming takes over an existing mount (its own token, its creator or an admin may); attaching anew makes one.
    authorize(actor, req.resume === undefined ? 'attachments.create' : 'attachments.manage');
    const where = { host: checkHost(req.host), path: checkMountPath(req.path) };
    if (req.readOnly !== undefined && typeof req.readOnly !== 'boolean')
      throw new InvalidArgumentError('readOnly must be true or false');
    const readOnly = req.readOnly === true;
    const vol = await this.host.volumeFor(actor, volume, 'read');
    if (!readOnly && actor.readOnly)
      throw new ReadOnlyError(`this token is read-only: it can only attach volume "${vol.name}" read-only`);
    const resumeId = req.resume === undefined ? undefined : parseAttachmentId(req.resume, vol.name);

    const now = this.host.now();
    const id = resumeId ?? AttachmentId.new();

    const { attachment, current, token, bearer } = await settle<{
      attachment: AttachmentRecord;
      current: VolumeRecord;
      token: TokenRecord;
      bearer: string;
    }>(this.host.md, async (tx) => {
      const current = await tx.getVolume(vol.id);
      if (!current) return { refused: new NotFoundError(`volume "${vol.name}" not found (it was deleted)`) };
      const all = await expireLeases(tx, await tx.listAttachments(vol.id), now);
      let resumed: AttachmentRecord | undefined;
      // The mount token dies with the token that made the mount; a mount resuming itself keeps its creator.
      let parent: TokenRecord | undefined = await tx.getToken(actor.tokenId);
      if (resumeId) {
        resumed = all.find((a) => a.id === resumeId);
        const refusal =
          resumeRefusal(resumed, resumeId, actor, vol, where, readOnly) ??
          (await managerRefusal(tx, actor, resumed!, 'resume'));
        if (refusal) return { refused: refusal };
        if (resumed!.tokenId === actor.tokenId && parent?.parentId) parent = await tx.getToken(parent.parentId);
      }
      if (!parent) return { refused: new NotFoundError('the token that would own this mount no longer exists') };
      const leaseExpiresAt = leaseEnd(now, this.host.lease, parent);
      const { token, bearer } = this.host.newToken(
        actor.tenantId,
        `mount:${id}`,
        vol.id,
        readOnly,
        leaseExpiresAt,
        id,
        parent.id,
      );
      const others = all.filter((a) => a.state === 'mounted' && a.id !== resumeId);
      const refusal = modeRefusal(current, others, readOnly);
      if (refusal) return { refused: refusal };
      let attachment: AttachmentRecord;
      if (resumed) {
        if (resumed.tokenId) await tx.revokeToken(resumed.tokenId, now);
        attachment = { ...resumed, state: 'mounted', reason: null, tokenId: token.id, leaseExpiresAt, updatedAt: now };
        await tx.updateAttachment(id, {
          state: 'mounted',
          reason: null,
          tokenId: token.id,
          leaseExpiresAt,
          updatedAt: now,
        });
      } else {
        attachment = {
          id,
          tenantId: actor.tenantId,
          volumeId: vol.id,
          ...where,
          readOnly,
          state: 'mounted',
          reason: null,
          tokenId: token.id,
          createdAt: now,
          updatedAt: now,
          leaseExpiresAt,
        };
        await tx.insertAttachment(attachment);
      }
      await tx.insertToken(token);
      return { ok: { attachment, current, token, bearer } };
    });
    return {
      attachment: view(attachment, current.name),
      secret: bearer,
      tokenExpiresAt: token.expiresAt!,
      volume: current,
    };
  }

  /** Extends the lease (and the token's expiry) of a mounted attachment. */
  async renewAttachment(actor: Actor, id: string): Promise<{ attachment: AttachmentView; tokenExpiresAt: Date }> {
    const found = await attachmentFor(this.host, actor, id, 'renew');
    const now = this.host.now();
    const leaseExpiresAt = new Date(now.getTime() + this.host.lease);
    const { attachment, volumeName, tokenExpiresAt } = await settle<{
      attachment: AttachmentRecord;
      volumeName: string;
      tokenExpiresAt: Date;
    }>(this.host.md, async (tx) => {
      const cur = await tx.getAttachment(found.id);
      if (!cur) return { refused: new NotFoundError(`attachment ${id} not found`) };
      if (cur.state !== 'mounted') return { refused: notMounted(cur) };
      const vol = await tx.getVolume(cur.volumeId);
      if (!vol) {
        await fail(tx, cur, VOLUME_DELETED, now);
        return { refused: new ConflictError(`attachment ${cur.id} is failed (${VOLUME_DELETED})`) };
      }
      if (isLapsed(cur, now)) {
        // The lease ran out: another mount may have taken the volume meanwhile.
        const others = (
          await expireLeases(
            tx,
            (await tx.listAttachments(vol.id)).filter((a) => a.id !== cur.id),
            now,
          )
        ).filter((a) => a.state === 'mounted');
        const refusal = modeRefusal(vol, others, cur.readOnly);
        if (refusal) {
          const reason = `lease expired and the volume was mounted elsewhere: ${refusal.message}`;
          await fail(tx, cur, reason, now);
          return {
            refused: new ConflictError(
              `attachment ${cur.id} ${reason}`,
              refusal.details ? { details: refusal.details } : undefined,
            ),
          };
        }
      }
      await tx.updateAttachment(cur.id, { leaseExpiresAt, updatedAt: now });
      // The renewed token still dies with (and no later than) the token that created the mount.
      const mountToken = cur.tokenId ? await tx.getToken(cur.tokenId) : undefined;
      const parent = mountToken?.parentId ? await tx.getToken(mountToken.parentId) : undefined;
      const tokenExpiresAt = leaseEnd(now, this.host.lease, parent);
      if (cur.tokenId) await tx.setTokenExpiry(cur.tokenId, tokenExpiresAt);
      return { ok: { attachment: { ...cur, leaseExpiresAt, updatedAt: now }, volumeName: vol.name, tokenExpiresAt } };
    });
    return { attachment: view(attachment, volumeName), tokenExpiresAt };
  }

  /** Releases (or, with `failed`, fails) an attachment and revokes its token; a second release changes nothing. */
  async releaseAttachment(actor: Actor, id: string, req: ReleaseRequest = {}): Promise<AttachmentView> {
    if (req.failed !== undefined && typeof req.failed !== 'boolean')
      throw new InvalidArgumentError('failed must be true or false');
    const reason =
      req.reason === undefined ? (req.failed ? 'failed (no reason given)' : 'unmounted') : checkReason(req.reason);
    const found = await attachmentFor(this.host, actor, id, 'release');
    const now = this.host.now();
    const attachment = await settle<AttachmentRecord>(this.host.md, async (tx) => {
      const cur = await tx.getAttachment(found.id);
      if (!cur) return { refused: new NotFoundError(`attachment ${id} not found`) };
      // Revoked again even when already released: idempotent, and closes any gap.
      if (cur.tokenId) await tx.revokeToken(cur.tokenId, now);
      if (cur.state !== 'mounted') return { ok: cur };
      const state = req.failed ? ('failed' as const) : ('released' as const);
      await tx.updateAttachment(cur.id, { state, reason, updatedAt: now });
      return { ok: { ...cur, state, reason, updatedAt: now } };
    });
    return view(attachment, await nameOfVolume(this.host.md, attachment.volumeId));
  }

  /** The volume's attachments (mounted ones unless `all`), oldest first; expired leases are marked failed on the way. */
  async listAttachments(actor: Actor, volume: string, opts: { all?: boolean } = {}): Promise<AttachmentView[]> {
    const vol = await this.host.volumeFor(actor, volume, 'read');
    const now = this.host.now();
    let all = await this.host.md.listAttachments(vol.id);
    // Only a list with a lapsed lease needs the write transaction that marks it.
    if (all.some((a) => isLapsed(a, now)))
      all = await this.host.md.transaction(async (tx) => expireLeases(tx, await tx.listAttachments(vol.id), now));
    return all.filter((a) => opts.all === true || a.state === 'mounted').map((a) => view(a, vol.name));
  }
}

/** Fails every mounted attachment of a volume and revokes their tokens (deleteVolume calls it in its transaction). */
export async function failAttachments(tx: MetadataOps, volumeId: VolumeId, reason: string, now: Date): Promise<void> {
  for (const a of await tx.listAttachments(volumeId)) if (a.state === 'mounted') await fail(tx, a, reason, now);
}

/**
 * Ends attachments on behalf of the control plane (a sandbox that ended or
 * failed to start): each mounted one becomes `state` with `reason`, and every
 * token is revoked, in one transaction. Ids that are unknown or already ended
 * are left as they are (idempotent).
 */
export async function endAttachments(
  md: MetadataStore,
  ids: readonly AttachmentId[],
  state: 'released' | 'failed',
  reason: string,
  now: Date,
): Promise<void> {
  if (ids.length === 0) return;
  await md.transaction(async (tx) => {
    for (const id of ids) {
      const a = await tx.getAttachment(id);
      if (!a) continue;
      if (a.tokenId) await tx.revokeToken(a.tokenId, now);
      if (a.state === 'mounted') await tx.updateAttachment(a.id, { state, reason, updatedAt: now });
    }
  });
}

// ---------------------------------------------------------------- rules

/** Why the access mode refuses one more attachment next to `mounted`, or undefined when it allows it. */
function modeRefusal(
  vol: VolumeRecord,
  mounted: readonly AttachmentRecord[],
  readOnly: boolean,
): ConflictError | undefined {
  if (vol.accessMode === 'RWX' || readOnly) return undefined;
  if (vol.accessMode === 'ROX')
    return new ConflictError(`volume "${vol.name}" is ROX (read-only many): mount it read-only`, {
      details: { accessMode: 'ROX' },
    });
  const rw = mounted.find((a) => !a.readOnly);
  if (!rw) return undefined;
  return new ConflictError(
    `volume "${vol.name}" is RWO and already mounted read-write at ${rw.host}:${rw.path} (${rw.id}); unmount it first or mount read-only`,
    { details: { accessMode: 'RWO', attachment: rw.id } },
  );
}

/** Why `resume` cannot take over `a`, or undefined when it can. */
function resumeRefusal(
  a: AttachmentRecord | undefined,
  id: AttachmentId,
  actor: Actor,
  vol: VolumeRecord,
  where: { host: string; path: string },
  readOnly: boolean,
): Error | undefined {
  if (!a || a.tenantId !== actor.tenantId)
    return new NotFoundError(`attachment ${id} not found on volume "${vol.name}": nothing to resume`);
  if (a.host !== where.host || a.path !== where.path) {
    return new ConflictError(
      `attachment ${id} is the mount at ${a.host}:${a.path}, not ${where.host}:${where.path}; resume only takes over the same mount`,
    );
  }
  if (a.readOnly !== readOnly)
    return new ConflictError(
      `attachment ${id} is ${a.readOnly ? 'read-only' : 'read-write'}; resume it ${a.readOnly ? 'read-only' : 'read-write'} or attach anew`,
    );
  if (a.state === 'released')
    return new ConflictError(
      `attachment ${id} was released${a.reason ? ` (${a.reason})` : ''}; attach anew instead of resuming`,
    );
  return undefined;
}

/** Marks mounted attachments whose lease is past as failed and revokes their tokens; returns the list as it now is. */
async function expireLeases(
  tx: MetadataOps,
  list: readonly AttachmentRecord[],
  now: Date,
): Promise<AttachmentRecord[]> {
  const out: AttachmentRecord[] = [];
  for (const a of list) {
    if (isLapsed(a, now)) out.push(await fail(tx, a, LEASE_EXPIRED, now));
    else out.push(a);
  }
  return out;
}

function isLapsed(a: AttachmentRecord, now: Date): boolean {
  return a.state === 'mounted' && a.leaseExpiresAt.getTime() <= now.getTime();
}

async function fail(tx: MetadataOps, a: AttachmentRecord, reason: string, now: Date): Promise<AttachmentRecord> {
  await tx.updateAttachment(a.id, { state: 'failed', reason, updatedAt: now });
  if (a.tokenId) await tx.revokeToken(a.tokenId, now);
  return { ...a, state: 'failed', reason, updatedAt: now };
}

function notMounted(a: AttachmentRecord): ConflictError {
  return new ConflictError(
    `attachment ${a.id} is ${a.state}${a.reason ? ` (${a.reason})` : ''}; attach again (with resume) to mount it anew`,
    { details: { state: a.state, reason: a.reason } },
  );
}

/**
 * The attachment `id` for renew or release. Another tenant's, or one outside
 * a scoped token's volume, is NotFound; one this token may not manage
 * (see managerRefusal) is Forbidden.
 */
async function attachmentFor(host: AttachmentHost, actor: Actor, id: string, what: string): Promise<AttachmentRecord> {
  authorize(actor, 'attachments.manage');
  let aid: AttachmentId;
  try {
    aid = AttachmentId.parse(id);
  } catch {
    throw new NotFoundError(`attachment ${JSON.stringify(String(id).slice(0, 80))} not found`);
  }
  const a = await host.md.getAttachment(aid);
  if (!a || a.tenantId !== actor.tenantId || (actor.volumeId && actor.volumeId !== a.volumeId))
    throw new NotFoundError(`attachment ${aid} not found`);
  const refusal = await managerRefusal(host.md, actor, a, what);
  if (refusal) throw refusal;
  return a;
}

/**
 * Why this actor may not renew, release or resume `a`, or undefined when it
 * may: only the attachment's own mount token, the token that created the
 * mount (its token's parent), or an admin token. So one scoped token cannot
 * take over or end another's mount, nor slip past the access mode by resuming.
 */
async function managerRefusal(
  md: MetadataOps,
  actor: Actor,
  a: AttachmentRecord,
  what: string,
): Promise<Error | undefined> {
  if (tokenKind(actor) === 'admin' || (a.tokenId !== null && actor.tokenId === a.tokenId)) return undefined;
  const mountToken = a.tokenId ? await md.getToken(a.tokenId) : undefined;
  if (mountToken?.parentId === actor.tokenId) return undefined;
  return new ForbiddenError(
    `only attachment ${a.id}'s own mount token, the token that mounted it, or an admin token may ${what} it`,
  );
}

// ---------------------------------------------------------------- validation and views

function checkHost(host: unknown): string {
  if (typeof host !== 'string' || host.length < 1 || host.length > MAX_HOST || /[\x00-\x1f\x7f]/.test(host)) {
    throw new InvalidArgumentError(`host must be 1-${MAX_HOST} printable characters`);
  }
  return host;
}

function checkMountPath(path: unknown): string {
  if (
    typeof path !== 'string' ||
    !path.startsWith('/') ||
    path.includes('\0') ||
    Buffer.byteLength(path) > MAX_MOUNT_PATH_BYTES
  ) {
    throw new InvalidArgumentError(
      `path must be an absolute path of at most ${MAX_MOUNT_PATH_BYTES} bytes, without NUL`,
    );
  }
  return path;
}

function checkReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.length < 1 || reason.length > MAX_REASON || reason.includes('\0')) {
    throw new InvalidArgumentError(`reason must be 1-${MAX_REASON} characters, without NUL`);
  }
  return reason;
}

function parseAttachmentId(id: unknown, volume: string): AttachmentId {
  try {
    return AttachmentId.parse(String(id));
  } catch {
    throw new NotFoundError(
      `attachment ${JSON.stringify(String(id).slice(0, 80))} not found on volume "${volume}": nothing to resume`,
    );
  }
}

async function nameOfVolume(md: MetadataOps, id: VolumeId): Promise<string> {
  return (await md.getVolume(id))?.name ?? DELETED_VOLUME_NAME;
}

function view(a: AttachmentRecord, volumeName: string): AttachmentView {
  return { ...a, volumeName };
}
