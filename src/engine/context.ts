/**
 * @module engine/context
 * What every engine service shares: the two stores, the clock, one tree
 * reader (its node cache serves all of them) and the settings with their
 * defaults resolved once. The services (access, volumes, commits, files,
 * attachments, gc) are built on it by engine/engine.
 */
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import type { BlobStore } from '../stores/blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { DEFAULT_ATTACHMENT_LEASE } from './attachments.js';
import { DEFAULT_MAX_VERIFY_BYTES } from './commit-chunks.js';
import { TreeReader } from './tree/tree-reader.js';
import { DEFAULT_UNCOMMITTED_QUOTA } from './upload-quota.js';

export interface EngineDeps {
  metadata: MetadataStore;
  blobs: BlobStore;
  /** Clock, for tests. */
  now?: () => Date;
  /** Lifetime of signed URLs, in seconds (default 15 minutes). */
  urlTtl?: number;
  /** An uploaded chunk must be committed within this many ms of its upload (default 30 minutes; GC's grace must be longer). */
  uploadWindow?: number;
  /** Compare-and-swap attempts per commit before giving up (default 30). */
  commitAttempts?: number;
  /** Lease of a mounted attachment and of its token, in ms (default 60 s); mount agents renew well before it runs out. */
  attachmentLease?: number;
  /** Most bytes one commit may make the server read back to verify (packs and re-hashed uploads; default 4 GiB). */
  maxVerifyBytes?: number;
  /** Uncommitted upload bytes a tenant may have reserved unless the operator set its own quota (default 16 GiB). */
  defaultUncommittedQuota?: number;
  /** The sandbox host of this server; without it every sandbox call that needs one answers 503 (--no-sandboxes). */
  sandboxRuntime?: SandboxRuntime;
  /** The URL mount agents of sandboxes reach the API at (a function: a server knows it once it listens). */
  serverUrl?: string | (() => string);
}

/** EngineDeps' settings, every one resolved. */
export type EngineSettings = Required<Omit<EngineDeps, 'metadata' | 'blobs' | 'now' | 'sandboxRuntime' | 'serverUrl'>>;

export interface EngineContext {
  md: MetadataStore;
  blobs: BlobStore;
  now: () => Date;
  reader: TreeReader;
  settings: EngineSettings;
}

/** The shared context, with every default filled in and the settings checked. */
export function engineContext(deps: EngineDeps): EngineContext {
  const settings: EngineSettings = {
    urlTtl: deps.urlTtl ?? 900,
    uploadWindow: deps.uploadWindow ?? 30 * 60_000,
    commitAttempts: deps.commitAttempts ?? 30,
    attachmentLease: deps.attachmentLease ?? DEFAULT_ATTACHMENT_LEASE,
    maxVerifyBytes: deps.maxVerifyBytes ?? DEFAULT_MAX_VERIFY_BYTES,
    defaultUncommittedQuota: deps.defaultUncommittedQuota ?? DEFAULT_UNCOMMITTED_QUOTA,
  };
  if (!Number.isSafeInteger(settings.attachmentLease) || settings.attachmentLease < 1)
    throw new InvalidArgumentError('attachmentLease must be a positive number of milliseconds');
  return {
    md: deps.metadata,
    blobs: deps.blobs,
    now: deps.now ?? (() => new Date()),
    reader: new TreeReader(deps.metadata),
    settings,
  };
}
