/**
 * @module @stowage/sdk
 * The Stowage SDK: persistent, versioned volumes for sandboxes.
 *
 * `Stowage` holds the connection (STOWAGE_URL and STOWAGE_TOKEN, or options);
 * `Volume` is a handle on one volume, with `vol.files` for direct file
 * access; `Sandbox` runs commands in an isolated environment with volumes
 * mounted. Errors are `StowageError` subclasses carrying a stable `code`.
 * The SDK depends on Node built-ins only.
 *
 * @example
 * import { Volume } from '@stowage/sdk';
 * const vol = await Volume.get('data', { mintIfMissing: true });
 * await vol.files.write('/hello.txt', 'hello');
 */
export { Stowage, DEFAULT_URL, type StowageOptions, type RequestOptions } from './client/http-client.js';
export {
  Volume,
  type ClientOption,
  type VolumeSettings,
  type GetVolumeOptions,
  type ForkOptions,
  type CommitChangesOptions,
} from './client/volume.js';
export {
  Sandbox,
  SandboxExec,
  type SandboxOptions,
  type SandboxVolume,
  type SandboxWriteOptions,
  type ExecOptions,
  type ExecOutput,
  type ExecResult,
} from './client/sandbox.js';
export {
  MountHandle,
  type MountStatus,
  type MountCommitResult,
  type MountReloadResult,
  type OverwrittenPath,
} from './client/mount-control.js';
export {
  Files,
  type WriteData,
  type WriteOptions,
  type WriteResult,
  type BatchEntry,
  type ReadOptions,
  type ListOptions,
} from './client/files.js';
export type { CommitOutcome, UploadStats, ProgressEvent, ProgressListener } from './client/commit-writer.js';
export type { IterateOptions, SearchOptions, ReplaceOptions, WatchOptions } from './client/file-search.js';
export type { ArchiveFormat, ByteRange, DownloadOptions, DownloadResult, RefusedEntry } from './client/download.js';
export type { UploadSource, UploadOptions, UploadResult } from './client/upload.js';
export type { SkippedEntry } from './client/local-tree.js';
export {
  StowageError,
  NotFoundError,
  AlreadyExistsError,
  ConflictError,
  InvalidArgumentError,
  PreconditionFailedError,
  QuotaExceededError,
  UnauthenticatedError,
  ForbiddenError,
  ReadOnlyError,
  PayloadTooLargeError,
  InsufficientStorageError,
  UnavailableError,
  InternalError,
  ERROR_CODES,
  isStowageError,
  type ErrorCode,
} from './common/errors.js';
export { parseSize, formatSize } from './common/sizes.js';
export type {
  AccessMode,
  MountTuning,
  Volume as VolumeInfo,
  FileInfo,
  EntryType,
  Change,
  Commit,
  CommitResponse,
  SkippedChange,
  Attachment,
  AttachmentState,
  AttachRequest,
  AttachResponse,
  RenewAttachmentResponse,
  ReleaseAttachmentRequest,
  CommitList,
  Snapshot,
  Tenant,
  Token,
  CreateTokenRequest,
  CreateTokenResponse,
  SignedRequest,
  ReadPlan,
  Sandbox as SandboxInfo,
  SandboxStatus,
  SandboxFileInfo,
  SandboxFileList,
  ImageSpec,
  ImageStep,
  Exec as ExecInfo,
  ExecStatus,
} from './api/wire.js';
/** Every wire shape of the HTTP API, as one namespace. */
export type * as wire from './api/wire.js';
