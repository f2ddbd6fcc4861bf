/**
 * @module engine/access
 * Who may do what: bearer tokens to actors (revoked, expired and orphaned
 * tokens refused, a mount token dying with the token that made it),
 * tenants and their quotas, minting and revoking tokens, the actor of a
 * signed file URL, and the lookup every other service starts with: the
 * volume an actor names, if the actor may see it (NotFound otherwise, so
 * names do not leak; engine/authority decides the actions).
 */
import {
  ForbiddenError,
  InvalidArgumentError,
  NotFoundError,
  UnauthenticatedError,
} from '@stowage/sdk/common/errors.js';
import { TenantId, TokenId, VolumeId, type AttachmentId } from '@stowage/sdk/common/ids.js';
import { parseVolumeName } from '@stowage/sdk/common/paths.js';
import type { TenantRecord, TokenRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import { authorize } from './authority.js';
import type { EngineContext } from './context.js';
import { mintToken, parseBearer, secretMatches } from './tokens.js';
import type { Actor, TenantQuotas } from './types.js';
import { checkCap, checkQuota, DEFAULT_CAP } from './volume-settings.js';

export class AccessService {
  constructor(private readonly ctx: EngineContext) {}

  async authenticate(bearer: string): Promise<Actor> {
    const parsed = parseBearer(bearer);
    const token = parsed && (await this.ctx.md.getToken(parsed.id));
    if (!parsed || !token || !secretMatches(parsed.secret, token.secretHash))
      throw new UnauthenticatedError('invalid API token');
    const dead = await this.whyDead(token);
    if (dead) throw new UnauthenticatedError(dead);
    return {
      tenantId: token.tenantId,
      tokenId: token.id,
      name: token.name,
      volumeId: token.volumeId,
      readOnly: token.readOnly,
      attachmentId: token.attachmentId,
    };
  }

  async createTenant(
    name: string,
    opts: TenantQuotas & { defaultCap?: number } = {},
  ): Promise<{ tenant: TenantRecord; secret: string; token: TokenRecord }> {
    const tenant: TenantRecord = {
      id: TenantId.new(),
      name: parseVolumeName(name, 'tenant'),
      defaultCap: checkCap(opts.defaultCap ?? DEFAULT_CAP),
      storageQuota: checkQuota(opts.storageQuota ?? null, 'storage quota'),
      uncommittedQuota: checkQuota(opts.uncommittedQuota ?? null, 'uncommitted quota'),
      createdAt: this.ctx.now(),
    };
    const { token, bearer } = this.newToken(tenant.id, 'admin', null, false, null);
    await this.ctx.md.transaction(async (tx) => {
      await tx.insertTenant(tenant);
      await tx.insertToken(token);
    });
    return { tenant, secret: bearer, token };
  }

  /**
   * Why a token can no longer be used (revoked, expired, or minted from a
   * token that is), or undefined while it is alive. A mount token dies with
   * the token that created it, so revoking a leaked token also ends the
   * mounts it made.
   */
  async whyDead(token: TokenRecord, depth = 0): Promise<string | undefined> {
    const what = depth === 0 ? 'this API token' : 'the token this one was minted from';
    if (token.revokedAt) return `${what} has been revoked`;
    if (token.expiresAt && token.expiresAt.getTime() <= this.ctx.now().getTime())
      return `${what} expired at ${token.expiresAt.toISOString()}`;
    if (!token.parentId) return undefined;
    const parent = await this.ctx.md.getToken(token.parentId);
    if (!parent || depth >= 8) return 'the token this one was minted from no longer exists';
    return this.whyDead(parent, depth + 1);
  }

  async getTenant(actor: Actor): Promise<TenantRecord> {
    authorize(actor, 'tenant.read');
    return this.tenantOf(actor);
  }

  async tenantOf(actor: Actor): Promise<TenantRecord> {
    const t = await this.ctx.md.getTenant(actor.tenantId);
    if (!t) throw new UnauthenticatedError('the tenant of this token no longer exists');
    // The quota in force, the installation's default included.
    return { ...t, uncommittedQuota: t.uncommittedQuota ?? this.ctx.settings.defaultUncommittedQuota };
  }

  async setTenantQuotas(name: string, quotas: TenantQuotas): Promise<TenantRecord> {
    const t = await this.ctx.md.getTenantByName(name);
    if (!t) throw new NotFoundError(`tenant "${name}" not found`);
    await this.ctx.md.updateTenant(t.id, {
      ...(quotas.storageQuota !== undefined ? { storageQuota: checkQuota(quotas.storageQuota, 'storage quota') } : {}),
      ...(quotas.uncommittedQuota !== undefined
        ? { uncommittedQuota: checkQuota(quotas.uncommittedQuota, 'uncommitted quota') }
        : {}),
    });
    return (await this.ctx.md.getTenant(t.id))!;
  }

  async updateTenant(actor: Actor, patch: { defaultCap: number }): Promise<TenantRecord> {
    authorize(actor, 'tenant.configure');
    await this.ctx.md.updateTenant(actor.tenantId, { defaultCap: checkCap(patch.defaultCap) });
    return this.tenantOf(actor);
  }

  async createToken(
    actor: Actor,
    req: { name: string; volume?: string; readOnly?: boolean; expiresIn?: number },
  ): Promise<{ token: TokenRecord; secret: string }> {
    authorize(actor, 'tokens.mint');
    if (typeof req.name !== 'string' || req.name.length < 1 || req.name.length > 100 || /[\x00-\x1f]/.test(req.name)) {
      throw new InvalidArgumentError('token name must be 1-100 printable characters');
    }
    let volumeId: VolumeId | null = null;
    if (req.volume !== undefined) volumeId = (await this.volumeFor(actor, req.volume, 'read')).id;
    let expiresAt: Date | null = null;
    if (req.expiresIn !== undefined) {
      if (!Number.isSafeInteger(req.expiresIn) || req.expiresIn <= 0 || req.expiresIn > 10 * 365 * 86400)
        throw new InvalidArgumentError('expiresIn must be a positive number of seconds (at most 10 years)');
      expiresAt = new Date(this.ctx.now().getTime() + req.expiresIn * 1000);
    }
    const { token, bearer } = this.newToken(actor.tenantId, req.name, volumeId, req.readOnly === true, expiresAt);
    await this.ctx.md.insertToken(token);
    return { token, secret: bearer };
  }

  async listTokens(actor: Actor): Promise<TokenRecord[]> {
    authorize(actor, 'tokens.list');
    return this.ctx.md.listTokens(actor.tenantId);
  }

  async revokeToken(actor: Actor, id: string): Promise<void> {
    authorize(actor, 'tokens.revoke');
    let tokenId: TokenId;
    try {
      tokenId = TokenId.parse(id);
    } catch {
      throw new NotFoundError(`token ${JSON.stringify(id.slice(0, 80))} not found`);
    }
    const token = await this.ctx.md.getToken(tokenId);
    if (!token || token.tenantId !== actor.tenantId) throw new NotFoundError(`token ${id} not found`);
    await this.ctx.md.revokeToken(tokenId, this.ctx.now());
  }

  newToken(
    tenantId: TenantId,
    name: string,
    volumeId: VolumeId | null,
    readOnly: boolean,
    expiresAt: Date | null,
    attachmentId: AttachmentId | null = null,
    parentId: TokenId | null = null,
  ): { token: TokenRecord; bearer: string } {
    const id = TokenId.new();
    const { secretHash, bearer } = mintToken(id);
    return {
      token: {
        id,
        tenantId,
        secretHash,
        name,
        volumeId,
        readOnly,
        createdAt: this.ctx.now(),
        expiresAt,
        revokedAt: null,
        attachmentId,
        parentId,
      },
      bearer,
    };
  }

  async shareActor(tokenId: string, volumeId: string): Promise<{ actor: Actor; volume: string }> {
    const token = await this.ctx.md.getToken(TokenId.parse(tokenId));
    if (!token) throw new ForbiddenError('the token that signed this URL no longer exists: ask for a new URL');
    // The signer's whole chain: a URL signed by a mount token dies with the token that made the mount.
    const dead = await this.whyDead(token);
    if (dead)
      throw new ForbiddenError(
        `this URL's signer can no longer sign: ${dead.replace('this API token', 'its token')}; ask for a new URL`,
      );
    const vol = await this.ctx.md.getVolume(VolumeId.parse(volumeId));
    if (!vol || vol.tenantId !== token.tenantId || (token.volumeId && token.volumeId !== vol.id))
      throw new NotFoundError('the volume of this URL no longer exists');
    return {
      actor: {
        tenantId: token.tenantId,
        tokenId: token.id,
        name: token.name,
        volumeId: vol.id,
        readOnly: true,
        attachmentId: token.attachmentId,
      },
      volume: vol.name,
    };
  }

  /** The volume if this actor may see it, else undefined. */
  async findVolume(actor: Actor, name: string): Promise<VolumeRecord | undefined> {
    const vol = await this.ctx.md.getVolumeByName(actor.tenantId, parseVolumeName(name));
    if (!vol || (actor.volumeId && vol.id !== actor.volumeId)) return undefined;
    return vol;
  }

  /** The volume for a read or a write; NotFound for anything the actor may not see. */
  async volumeFor(actor: Actor, name: string, access: 'read' | 'write'): Promise<VolumeRecord> {
    authorize(actor, access === 'write' ? 'volume.write' : 'volume.read');
    const vol = await this.findVolume(actor, name);
    if (!vol) throw new NotFoundError(`volume "${name}" not found`);
    return vol;
  }
}
