/**
 * @module engine/authority
 * What each kind of token may do: one table, checked by `authorize` at the
 * top of every engine call made for a caller. Two axes decide a request:
 *
 * - the token's **kind** (this table): an `admin` tenant token runs the
 *   tenant; a `tenant-read-only` token reads every volume and changes
 *   nothing; `volume` and `volume-read-only` tokens are scoped to one volume;
 *   `mount` and `mount-read-only` tokens are minted for one attachment (a
 *   mount agent), die with it and with the token that created it.
 * - the **volume** it may see: a scoped token sees its one volume and gets
 *   NotFound for every other (the engine's volume lookup), so names of other
 *   volumes and tenants never leak.
 *
 * A token's expiry and revocation (and its parent's) are checked before any
 * of this, when the bearer is authenticated.
 */
import { ForbiddenError, ReadOnlyError } from '@stowage/sdk/common/errors.js';
import type { Actor } from './types.js';

/** The kinds of token, from the most to the least powerful. */
export const TOKEN_KINDS = [
  'admin',
  'tenant-read-only',
  'volume',
  'volume-read-only',
  'mount',
  'mount-read-only',
] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** Everything a caller can ask the engine to do, as the authority table names it. */
export type Action =
  | 'tenant.read'
  | 'tenant.configure'
  | 'tokens.list'
  | 'tokens.mint'
  | 'tokens.revoke'
  | 'volumes.create'
  | 'volumes.configure'
  | 'volumes.delete'
  | 'volumes.fork'
  | 'volume.read'
  | 'volume.write'
  | 'attachments.create'
  | 'attachments.manage'
  | 'sandboxes.read'
  | 'sandboxes.run';

const ALL = TOKEN_KINDS;
const WRITERS: readonly TokenKind[] = ['admin', 'volume', 'mount'];
const ADMIN: readonly TokenKind[] = ['admin'];

/**
 * Who may do what. `attachments.create` lets read-only kinds attach read-only
 * (the attachment then refuses a read-write one); `attachments.manage`
 * (renew, release, resume) is further limited to the attachment's own mount
 * token, the token that created it, or an admin token (engine/attachments).
 * Sandboxes are the tenant's: a read-only tenant token sees them (records,
 * execs, output, files), only an admin token runs anything in them, and
 * tokens scoped to a volume or a mount do nothing with them (code inside a
 * sandbox holds mount tokens only, so it cannot start or drive sandboxes).
 */
export const AUTHORITY: Readonly<Record<Action, readonly TokenKind[]>> = {
  'tenant.read': ['admin', 'tenant-read-only'],
  'tenant.configure': ADMIN,
  'tokens.list': ['admin', 'tenant-read-only'],
  'tokens.mint': ADMIN,
  'tokens.revoke': ADMIN,
  'volumes.create': ADMIN,
  'volumes.configure': ADMIN,
  'volumes.delete': ADMIN,
  'volumes.fork': ADMIN,
  'volume.read': ALL,
  'volume.write': WRITERS,
  'attachments.create': ['admin', 'tenant-read-only', 'volume', 'volume-read-only'],
  'attachments.manage': ['admin', 'volume', 'volume-read-only', 'mount', 'mount-read-only'],
  'sandboxes.read': ['admin', 'tenant-read-only'],
  'sandboxes.run': ADMIN,
};

/** The kind of the token an actor holds. */
export function tokenKind(actor: Pick<Actor, 'volumeId' | 'readOnly' | 'attachmentId'>): TokenKind {
  if (actor.attachmentId) return actor.readOnly ? 'mount-read-only' : 'mount';
  if (actor.volumeId) return actor.readOnly ? 'volume-read-only' : 'volume';
  return actor.readOnly ? 'tenant-read-only' : 'admin';
}

/** Whether the actor's kind of token may do `action`. */
export function isAllowed(actor: Pick<Actor, 'volumeId' | 'readOnly' | 'attachmentId'>, action: Action): boolean {
  return AUTHORITY[action].includes(tokenKind(actor));
}

const DESCRIPTIONS: Record<TokenKind, string> = {
  admin: 'an admin token',
  'tenant-read-only': 'a read-only tenant token',
  volume: 'a token scoped to one volume',
  'volume-read-only': 'a read-only token scoped to one volume',
  mount: "a mount's token",
  'mount-read-only': "a read-only mount's token",
};

const VERBS: Record<Action, string> = {
  'tenant.read': 'read tenant settings',
  'tenant.configure': 'change tenant settings',
  'tokens.list': 'list tokens',
  'tokens.mint': 'create tokens',
  'tokens.revoke': 'revoke tokens',
  'volumes.create': 'create volumes',
  'volumes.configure': 'change volume settings',
  'volumes.delete': 'delete volumes',
  'volumes.fork': 'fork volumes',
  'volume.read': 'read volumes',
  'volume.write': 'change volumes',
  'attachments.create': 'attach volumes',
  'attachments.manage': 'manage attachments',
  'sandboxes.read': 'read sandboxes',
  'sandboxes.run': 'run sandboxes',
};

/**
 * Throws unless the actor's kind of token may do `action`: ReadOnlyError
 * when a writing kind could (the token is read-only), ForbiddenError otherwise.
 */
export function authorize(actor: Actor, action: Action): void {
  if (isAllowed(actor, action)) return;
  const kind = tokenKind(actor);
  const what = `this is ${DESCRIPTIONS[kind]}: it cannot ${VERBS[action]}`;
  if (actor.readOnly && isAllowed({ ...actor, readOnly: false }, action)) throw new ReadOnlyError(what);
  throw new ForbiddenError(`${what}${AUTHORITY[action].includes('admin') ? ' (use an admin token)' : ''}`);
}
