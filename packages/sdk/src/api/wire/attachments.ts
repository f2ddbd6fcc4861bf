/**
 * @module wire/attachments
 * Attachments (mounts): attach, renew, release and list. Types only; re-exported by api/wire.
 */
import type { AttachmentRecord, Json } from '../../model/records.js';
import type { Volume } from './volumes.js';

/**
 * The control plane's record of one mount. A mounted attachment holds a lease
 * its agent renews; one whose lease ran out counts as gone for the access
 * mode (and is marked failed, reason "lease expired", when next looked at).
 */
export type Attachment = Json<
  Omit<AttachmentRecord, 'tenantId' | 'tokenId'> & {
    /** The volume's name ("(deleted)" once it is gone). */
    volume: string;
  }
>;

/**
 * POST /v1/volumes/{name}/attachments : mounts need one. Refused with 409 when
 * the volume's access mode forbids it (a second read-write attachment of an
 * RWO volume, a read-write one of an ROX volume); the message names the
 * attachment in the way. `resume` takes over an earlier attachment of the same
 * volume, host and path (a mount agent restarted after a crash): its old
 * token is revoked and a new one issued.
 */
export interface AttachRequest {
  host: string;
  path: string;
  readOnly?: boolean;
  resume?: string;
}
/** The scoped token (`token`, a bearer) reaches only this volume, read-only for read-only attachments, and dies with the attachment. */
export interface AttachResponse {
  attachment: Attachment;
  token: string;
  tokenExpiresAt: string;
  volume: Volume;
}
/** GET /v1/volumes/{name}/attachments?all=true (default: mounted only) */
export interface AttachmentList {
  attachments: Attachment[];
}
/** POST /v1/attachments/{id}/renew : with the attachment's own token; extends its lease and its token's expiry. */
export interface RenewAttachmentResponse {
  attachment: Attachment;
  tokenExpiresAt: string;
}
/** POST /v1/attachments/{id}/release : with the attachment's own token or a tenant token; revokes the scoped token. Answers Attachment. */
export interface ReleaseAttachmentRequest {
  failed?: boolean;
  reason?: string;
}
