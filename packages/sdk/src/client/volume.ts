/**
 * @module client/volume
 * `Volume`: a handle on one named, versioned volume of the caller's tenant,
 * with its lifecycle (get, create, list, delete, resize), its history
 * (commits, snapshots, restore, fork) and its files (`vol.files`).
 *
 * A handle caches the server's description of the volume (`info`); calls
 * that change the volume refresh it from the answer, and `refresh()` fetches
 * it anew.
 */
import { MountHandle } from './mount-control.js';
import type * as wire from '../api/wire.js';
import { InvalidArgumentError } from '../common/errors.js';
import { parseVolumeName } from '../common/paths.js';
import { parseSize } from '../common/sizes.js';
import { postCommit, type CommitTarget } from './commit-writer.js';
import { Files } from './files.js';
import { downloadTo, signedUrl, type DownloadOptions, type DownloadResult } from './download.js';
import { uploadTo, type UploadOptions, type UploadResult, type UploadSource } from './upload.js';
import { defaultStowage, type Stowage } from './http-client.js';

/** Which client to use; the environment's (STOWAGE_URL, STOWAGE_TOKEN) when absent. */
export interface ClientOption {
  client?: Stowage;
}

/** Settings of a new volume. */
export interface VolumeSettings {
  /** RWO (default), ROX or RWX. */
  accessMode?: wire.AccessMode;
  /** Size cap: bytes, or a size such as "2G"; the tenant's default when absent. */
  cap?: number | string;
  /** Mount tuning defaults of the volume. */
  tuning?: Partial<wire.MountTuning>;
}

/** Options of `Volume.get`. */
export interface GetVolumeOptions extends VolumeSettings, ClientOption {
  /** Create the volume (with these settings) when it does not exist. */
  mintIfMissing?: boolean;
}

/** Options of `vol.fork`. */
export interface ForkOptions extends VolumeSettings {
  /** Start at this snapshot instead of the head. */
  snapshot?: string;
  /** Start at this commit instead of the head. */
  commit?: string;
}

/** Options of `vol.commitChanges`. */
export interface CommitChangesOptions {
  message?: string;
  /** The commit the changes were based on (to report or refuse overwrites of newer work). */
  base?: string;
  /** Upload keys of chunks sent for this commit (from POST .../uploads). */
  uploads?: Array<{ hash: string; key: string }>;
  onConflict?: 'overwrite' | 'fail';
  /** Skip changes that no longer apply to head (reported in the answer's `skipped`) instead of failing the commit. */
  bestEffort?: boolean;
}

function settingsBody(s: VolumeSettings): wire.CreateVolumeRequest {
  const body: wire.CreateVolumeRequest = {};
  if (s.accessMode !== undefined) body.accessMode = s.accessMode;
  if (s.cap !== undefined) body.cap = parseSize(s.cap);
  if (s.tuning !== undefined) body.tuning = s.tuning;
  return body;
}

function volumeUrl(name: string, suffix = ''): string {
  return `/v1/volumes/${encodeURIComponent(name)}${suffix}`;
}

/**
 * One volume of the tenant.
 *
 * @example
 * const vol = await Volume.get('data', { mintIfMissing: true, cap: '4G' });
 * await vol.files.write('/hello.txt', 'hello');
 * await vol.snapshot('v1');
 */
export class Volume implements CommitTarget {
  /** The client this handle talks through. */
  readonly client: Stowage;
  /** The direct file API of this volume. */
  readonly files: Files;
  #info: wire.Volume;

  private constructor(client: Stowage, info: wire.Volume) {
    this.client = client;
    this.#info = info;
    this.files = new Files({ client, name: info.name, noteCommit: (c) => this.#noteCommit(c) });
  }

  /** The volume's name (unique in the tenant). */
  get name(): string {
    return this.#info.name;
  }

  /** The volume's id (stable across renames and restores). */
  get id(): string {
    return this.#info.id;
  }

  /** The server's description of the volume, as last seen. */
  get info(): wire.Volume {
    return this.#info;
  }

  /** Seq of the newest commit this handle made, so concurrent writes finishing out of order never move `info` back. */
  #seenSeq = -1;

  #noteCommit(c: wire.Commit): void {
    if (c.seq <= this.#seenSeq) return;
    this.#seenSeq = c.seq;
    this.#info = { ...this.#info, head: c.id, size: c.size, fileCount: c.fileCount, updatedAt: c.createdAt };
  }

  /**
   * Opens a volume by name; with `mintIfMissing`, creates it when absent
   * (race-safe: concurrent callers get the same volume). Otherwise a missing
   * volume is NotFoundError.
   *
   * @example
   * const vol = await Volume.get('data', { mintIfMissing: true, accessMode: 'RWX' });
   */
  static async get(name: string, options: GetVolumeOptions = {}): Promise<Volume> {
    const client = options.client ?? defaultStowage();
    parseVolumeName(name);
    const info = options.mintIfMissing
      ? await client.request<wire.Volume>('PUT', volumeUrl(name), { body: settingsBody(options) })
      : await client.request<wire.Volume>('GET', volumeUrl(name));
    return new Volume(client, info);
  }

  /**
   * Creates a volume; AlreadyExistsError when the name is taken.
   *
   * @example
   * const vol = await Volume.create('scratch', { cap: '512M' });
   */
  static async create(name: string, options: VolumeSettings & ClientOption = {}): Promise<Volume> {
    const client = options.client ?? defaultStowage();
    parseVolumeName(name);
    const info = await client.request<wire.Volume>('POST', '/v1/volumes', { body: { name, ...settingsBody(options) } });
    return new Volume(client, info);
  }

  /**
   * A handle on a volume mounted at `path` on this machine (by `stowage mount`
   * or a sandbox): `commit()` publishes the mount's local changes, `reload()`
   * moves it to the latest commit, `status()` tells what is uncommitted. It
   * talks to the mount's agent, not to the server, so it needs no token.
   *
   * @example
   * const vol = Volume.fromMount('/mnt/data');
   * const { commit, uploadedChunks } = await vol.commit({ message: 'results' });
   * await vol.reload();
   */
  static fromMount(path: string): MountHandle {
    return new MountHandle(path);
  }

  /**
   * Lists the tenant's volumes.
   *
   * @example
   * for (const v of await Volume.list()) console.log(v.name, v.info.size);
   */
  static async list(options: ClientOption = {}): Promise<Volume[]> {
    const client = options.client ?? defaultStowage();
    const { volumes } = await client.request<wire.VolumeList>('GET', '/v1/volumes');
    return volumes.map((v) => new Volume(client, v));
  }

  /**
   * Fetches the volume's current description.
   *
   * @example
   * console.log((await vol.refresh()).head);
   */
  async refresh(): Promise<wire.Volume> {
    this.#info = await this.client.request<wire.Volume>('GET', volumeUrl(this.name));
    return this.#info;
  }

  /**
   * Deletes the volume; its chunks are reclaimed by garbage collection once
   * no fork or snapshot elsewhere uses them.
   *
   * @example
   * await vol.delete();
   */
  async delete(): Promise<void> {
    await this.client.request<void>('DELETE', volumeUrl(this.name));
  }

  /**
   * Changes settings: cap, access mode, mount tuning.
   *
   * @example
   * await vol.update({ tuning: { prefetch: 4 } });
   */
  async update(settings: VolumeSettings): Promise<wire.Volume> {
    const body: wire.UpdateVolumeRequest = settingsBody(settings);
    this.#info = await this.client.request<wire.Volume>('PATCH', volumeUrl(this.name), { body });
    return this.#info;
  }

  /**
   * Sets the size cap (bytes or e.g. "10G"). Shrinking below the current size is refused.
   *
   * @example
   * await vol.resize('10G');
   */
  async resize(cap: number | string): Promise<wire.Volume> {
    return this.update({ cap });
  }

  /**
   * Takes a snapshot of the head (O(1)); the name defaults to a timestamp.
   *
   * @example
   * const snap = await vol.snapshot('before-migration');
   */
  async snapshot(name?: string, options: { commit?: string } = {}): Promise<wire.Snapshot> {
    const body: wire.CreateSnapshotRequest = {};
    if (name !== undefined) body.name = parseVolumeName(name, 'snapshot');
    if (options.commit !== undefined) body.commit = options.commit;
    return this.client.request<wire.Snapshot>('POST', volumeUrl(this.name, '/snapshots'), { body });
  }

  /**
   * Lists the volume's snapshots.
   *
   * @example
   * const names = (await vol.snapshots()).map((s) => s.name);
   */
  async snapshots(): Promise<wire.Snapshot[]> {
    return (await this.client.request<wire.SnapshotList>('GET', volumeUrl(this.name, '/snapshots'))).snapshots;
  }

  /**
   * Deletes a snapshot (its data stays while anything else uses it).
   *
   * @example
   * await vol.deleteSnapshot('before-migration');
   */
  async deleteSnapshot(name: string): Promise<void> {
    await this.client.request<void>('DELETE', volumeUrl(this.name, `/snapshots/${encodeURIComponent(name)}`));
  }

  /**
   * Makes a snapshot's (or commit's) tree the new head, as a new commit:
   * history is kept, nothing is rewritten.
   *
   * @example
   * await vol.restore('before-migration');
   * await vol.restore({ commit: oldCommitId });
   */
  async restore(target: string | { name: string } | { commit: string }): Promise<wire.CommitResponse> {
    let body: wire.RestoreRequest;
    if (typeof target === 'string') body = { snapshot: target };
    else if ('name' in target) body = { snapshot: target.name };
    else if ('commit' in target) body = { commit: target.commit };
    else throw new InvalidArgumentError('restore needs a snapshot name or { commit }');
    const res = await this.client.request<wire.CommitResponse>('POST', volumeUrl(this.name, '/restore'), { body });
    this.#noteCommit(res.commit);
    return res;
  }

  /**
   * Creates a new volume starting at this one's head (or a snapshot or
   * commit): O(1), copy-on-write, and later writes on either side stay
   * invisible to the other.
   *
   * @example
   * const experiment = await vol.fork('data-experiment', { snapshot: 'v1' });
   */
  async fork(newName: string, options: ForkOptions = {}): Promise<Volume> {
    parseVolumeName(newName);
    const body: wire.ForkRequest = { name: newName };
    if (options.snapshot !== undefined) body.snapshot = options.snapshot;
    if (options.commit !== undefined) body.commit = options.commit;
    if (options.accessMode !== undefined) body.accessMode = options.accessMode;
    if (options.cap !== undefined) body.cap = parseSize(options.cap);
    const info = await this.client.request<wire.Volume>('POST', volumeUrl(this.name, '/fork'), { body });
    return new Volume(this.client, info);
  }

  /**
   * Commits of the volume, newest first; page with `before: nextBefore`.
   *
   * @example
   * const { commits, nextBefore } = await vol.history({ limit: 20 });
   */
  async history(options: { limit?: number; before?: number } = {}): Promise<wire.CommitList> {
    return this.client.request<wire.CommitList>('GET', volumeUrl(this.name, '/commits'), { query: { limit: options.limit, before: options.before } });
  }

  /**
   * Attaches (mounts) the volume at host:path and returns the attachment with
   * a scoped token for the mount: it reaches only this volume (read-only for
   * a read-only attachment) and expires with the attachment's lease unless
   * renewed (`stowage.renewAttachment`). The access mode may refuse it
   * (ConflictError naming the attachment in the way).
   *
   * @example
   * const { attachment, token, tokenExpiresAt } = await vol.attach({ host: 'sandbox-7', path: '/mnt/data', readOnly: true });
   * const mount = new Stowage({ url: stowage.url, token }); // what the mount agent runs on
   */
  async attach(req: wire.AttachRequest): Promise<wire.AttachResponse> {
    const res = await this.client.request<wire.AttachResponse>('POST', volumeUrl(this.name, '/attachments'), { body: req });
    this.#info = res.volume;
    return res;
  }

  /**
   * The volume's attachments, oldest first: mounted ones, or all of them
   * (released and failed too, with their reasons) with `all`.
   *
   * @example
   * for (const a of await vol.attachments({ all: true })) console.log(a.id, a.state, `${a.host}:${a.path}`, a.reason);
   */
  async attachments(options: { all?: boolean } = {}): Promise<wire.Attachment[]> {
    const res = await this.client.request<wire.AttachmentList>('GET', volumeUrl(this.name, '/attachments'), { query: { all: options.all ? 'true' : undefined } });
    return res.attachments;
  }

  /**
   * Low level: publishes a change set as one commit. `put` changes must name
   * chunks the store already has or that were uploaded for this commit
   * (`uploads`); `vol.files` does all of that for you.
   *
   * @example
   * await vol.commitChanges([{ op: 'move', from: '/a', to: '/b' }, { op: 'delete', path: '/tmp', recursive: true }], { message: 'tidy' });
   * const r = await vol.commitChanges(changes, { bestEffort: true }); // r.skipped: changes that no longer applied
   */
  async commitChanges(changes: wire.Change[], options: CommitChangesOptions = {}): Promise<wire.CommitResponse> {
    const req: wire.CommitRequest = { changes };
    if (options.message !== undefined) req.message = options.message;
    if (options.base !== undefined) req.base = options.base;
    if (options.uploads !== undefined) req.uploads = options.uploads;
    if (options.onConflict !== undefined) req.onConflict = options.onConflict;
    if (options.bestEffort !== undefined) req.bestEffort = options.bestEffort;
    const res = await postCommit(this, req);
    this.#noteCommit(res.commit);
    return res;
  }

  /**
   * Uploads a local file, a whole local directory (one commit) or a stream.
   * Files of 64 MiB or more (or with `resumable: true`) go over tus and
   * resume where they stopped when the same upload is run again.
   *
   * @example
   * await vol.upload('./model.bin', '/models/model.bin');
   * const r = await vol.upload('./project', '/src'); // one commit; r.skipped lists escaping symlinks
   * await vol.upload(process.stdin, '/logs/run.txt');
   */
  async upload(source: UploadSource, remotePath?: string, options: UploadOptions = {}): Promise<UploadResult> {
    return uploadTo(this, source, remotePath, options);
  }

  /**
   * Downloads a file to a local file, a directory to a local directory
   * (never writing outside it or through a symlink), or, with `archive`, a
   * directory as one tar or tar.gz stream to a file or a writable stream.
   *
   * @example
   * await vol.download('/results/model.bin', './model.bin');
   * const r = await vol.download('/results', './results'); // r.refused lists entries not written
   * await vol.download('/results', './results.tar.gz', { archive: 'tar.gz' });
   */
  async download(remotePath: string, local: string | NodeJS.WritableStream, options: DownloadOptions = {}): Promise<DownloadResult> {
    return downloadTo(this, remotePath, local as string | import('node:stream').Writable, options);
  }

  /**
   * A URL for one file that works without a token (plain curl) until it
   * expires; it serves the file as it is now (or at `commit`).
   *
   * @example
   * const url = await vol.signedUrl('/report.pdf', { expiresIn: 600 }); // seconds, at most 7 days
   */
  async signedUrl(path: string, options: { expiresIn?: number; commit?: string } = {}): Promise<string> {
    return (await signedUrl(this, path, options)).url;
  }
}
