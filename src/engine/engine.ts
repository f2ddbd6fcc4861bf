/**
 * @module engine
 * The volume engine: tenants, tokens, volumes, commits, snapshots, forks,
 * reads and garbage collection, over a MetadataStore and a BlobStore. It
 * knows nothing of HTTP; the server translates requests into these calls.
 *
 * The work is done by services with one job each, over one shared context
 * (engine/context): access (auth, tenants, tokens, volume lookup), volumes
 * (lifecycle, snapshots, restore, fork), commits (uploads, verification,
 * publishing), files (reads, writes, search, edits, the change feed),
 * attachments (mounts), sandboxes (records and volumes of sandboxes run by
 * a SandboxRuntime) and gc. This module only wires them and offers them
 * as the one VolumeEngine the server calls.
 */
import { AccessService } from './access.js';
import { AttachmentService } from './attachments.js';
import { CommitService } from './commits.js';
import { engineContext, type EngineDeps } from './context.js';
import { FileService } from './files.js';
import { GcService } from './gc.js';
import { SandboxService } from './sandboxes.js';
import type { VolumeEngine } from './types.js';
import { VolumeService } from './volumes.js';

export type { EngineDeps } from './context.js';

/** The engine as the server and the operator CLI use it. */
export type Engine = VolumeEngine & Pick<GcService, 'backfillChunkOwners'>;

/** The named methods of a service, bound to it: the facade forwards calls without restating their signatures. */
function forward<S extends object, K extends keyof S>(service: S, ...names: K[]): Pick<S, K> {
  const out = {} as Pick<S, K>;
  for (const name of names) {
    const method = service[name];
    out[name] = (typeof method === 'function' ? method.bind(service) : method) as S[K];
  }
  return out;
}

/** Creates the engine. Stores are owned by the caller. */
export function createEngine(deps: EngineDeps): Engine {
  const ctx = engineContext(deps);
  const access = new AccessService(ctx);
  const commits = new CommitService(ctx, access);
  const volumes = new VolumeService(ctx, access, commits);
  const files = new FileService(ctx, access, commits);
  const attachments = new AttachmentService({
    md: ctx.md,
    now: ctx.now,
    lease: ctx.settings.attachmentLease,
    volumeFor: (actor, name, mode) => access.volumeFor(actor, name, mode),
    newToken: (...args) => access.newToken(...args),
  });
  const gc = new GcService(ctx);
  const { serverUrl } = deps;
  const sandboxes = new SandboxService({
    ctx,
    attachments,
    runtime: deps.sandboxRuntime,
    serverUrl: typeof serverUrl === 'string' ? () => serverUrl : serverUrl,
  });
  return {
    ...forward(
      access,
      'authenticate',
      'createTenant',
      'getTenant',
      'setTenantQuotas',
      'updateTenant',
      'createToken',
      'listTokens',
      'revokeToken',
      'shareActor',
    ),
    ...forward(
      volumes,
      'createVolume',
      'getOrCreateVolume',
      'getVolume',
      'listVolumes',
      'updateVolume',
      'deleteVolume',
      'createSnapshot',
      'listSnapshots',
      'deleteSnapshot',
      'restore',
      'fork',
    ),
    ...forward(
      commits,
      'prepareUpload',
      'preparePack',
      'reserveStagedUpload',
      'releaseStagedUpload',
      'commit',
      'listCommits',
      'onCommit',
    ),
    ...forward(files, 'stat', 'list', 'readPlan', 'readFile', 'writeFile', 'search', 'replace', 'edit', 'changesSince'),
    ...forward(attachments, 'attach', 'listAttachments', 'renewAttachment', 'releaseAttachment'),
    ...forward(
      sandboxes,
      'createSandbox',
      'listSandboxes',
      'getSandbox',
      'terminateSandbox',
      'execSandbox',
      'listExecs',
      'getExec',
      'execOutput',
      'writeExecStdin',
      'signalExec',
      'resizeExec',
      'writeSandboxFile',
      'readSandboxFile',
      'statSandboxFile',
      'listSandboxFiles',
      'removeSandboxFile',
      'mkdirSandboxFile',
      'reconcileSandboxes',
    ),
    ...forward(gc, 'gc', 'backfillChunkOwners'),
  } satisfies Engine;
}
