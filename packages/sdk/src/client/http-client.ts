/**
 * @module client/http-client
 * The control-plane client: where the server is, which token to send, and
 * how a JSON call and its errors travel. `Stowage` is the one object that
 * holds that configuration; `Volume` and the CLI borrow it.
 *
 * Errors: every non-2xx answer becomes the StowageError subclass of the
 * server's code, with the server's message and details; a server that cannot
 * be reached is an UnavailableError naming the URL. Only control-plane
 * metadata goes through here; chunk bytes travel by signed requests
 * (see transfer.ts).
 *
 * The SDK uses Node built-ins only (global fetch here, node:http for
 * streamed uploads), never a native or heavy dependency.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type * as wire from '../api/wire.js';
import {
  errorCodeOfStatus,
  errorFromCode,
  InternalError,
  InvalidArgumentError,
  type StowageError,
  UnavailableError,
} from '../common/errors.js';

/** Where the server listens when neither an option nor STOWAGE_URL says otherwise. */
export const DEFAULT_URL = 'http://127.0.0.1:7420';

/** How to reach a Stowage server. */
export interface StowageOptions {
  /** Base URL of the server, e.g. "http://127.0.0.1:7420"; defaults to $STOWAGE_URL, then DEFAULT_URL. */
  url?: string;
  /** Bearer token; defaults to $STOWAGE_TOKEN. */
  token?: string;
  /** Chunks moved at once by uploads and downloads (default 4). */
  concurrency?: number;
}

/** One JSON call: method, path below the base URL, optional query and body. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
}

/**
 * Turns an error answer into a StowageError: the ErrorBody's code and message
 * when the body is one, otherwise a code derived from the status.
 */
export function errorFromResponse(status: number, bodyText: string, what: string): StowageError {
  try {
    const parsed = JSON.parse(bodyText) as Partial<wire.ErrorBody>;
    const e = parsed.error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string') {
      const details = e.details && typeof e.details === 'object' ? e.details : undefined;
      return errorFromCode(e.code, e.message, details);
    }
  } catch {
    // Not JSON: fall through to the status.
  }
  const snippet = bodyText.replace(/\s+/g, ' ').trim().slice(0, 200);
  return errorFromCode(errorCodeOfStatus(status), `${what} failed with HTTP ${status}${snippet ? `: ${snippet}` : ''}`);
}

/**
 * The body of a JSON call's answer: the StowageError of a non-2xx status,
 * nothing for 204 or an empty body, an InternalError for a body that is not JSON.
 */
function decodeAnswer<T>(status: number, text: string, what: string): T {
  if (status < 200 || status >= 300) throw errorFromResponse(status, text, what);
  if (status === 204 || text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new InternalError(`${what}: the server answered something that is not JSON`, { cause: e });
  }
}

/** The message of a low-level network failure (fetch hides it in `cause`). */
export function networkReason(e: unknown): string {
  let reason = e instanceof Error ? e.message : String(e);
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur instanceof Error; i++) {
    const code = (cur as Error & { code?: unknown }).code;
    if (cur.message && cur.message !== 'fetch failed') reason = cur.message;
    else if (typeof code === 'string') reason = code;
    cur = cur.cause;
  }
  return reason;
}

/** Removes trailing slashes and checks the URL parses. */
function normaliseBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`invalid Stowage URL ${JSON.stringify(url)}: expected e.g. http://127.0.0.1:7420`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidArgumentError(`invalid Stowage URL ${JSON.stringify(url)}: only http: and https: are supported`);
  }
  return parsed.toString().replace(/\/+$/, '');
}

/**
 * A configured connection to a Stowage server: the entry point of the SDK.
 *
 * @example
 * const stowage = new Stowage({ url: 'http://127.0.0.1:7420', token: process.env.STOWAGE_TOKEN });
 * const vol = await Volume.get('data', { mintIfMissing: true, client: stowage });
 */
export class Stowage {
  /** Base URL without a trailing slash. */
  readonly url: string;
  /** Chunks moved at once by uploads and downloads. */
  readonly concurrency: number;
  readonly #token: string | undefined;

  constructor(options: StowageOptions = {}) {
    this.url = normaliseBaseUrl(options.url ?? process.env.STOWAGE_URL ?? DEFAULT_URL);
    const token = options.token ?? process.env.STOWAGE_TOKEN;
    this.#token = token === undefined || token === '' ? undefined : token;
    const c = options.concurrency ?? 4;
    if (!Number.isInteger(c) || c < 1 || c > 64)
      throw new InvalidArgumentError(`invalid concurrency ${c}: use a whole number from 1 to 64`);
    this.concurrency = c;
  }

  /**
   * A client configured from STOWAGE_URL and STOWAGE_TOKEN.
   *
   * @example
   * const stowage = Stowage.fromEnv();
   */
  static fromEnv(): Stowage {
    return new Stowage();
  }

  /** True when a token is configured. */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** The Authorization header of this client (empty without a token), for protocols the SDK speaks through other libraries (tus). */
  authHeaders(): Record<string, string> {
    return this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` };
  }

  /** The absolute URL of an API path ("/v1/volumes") with its query. */
  urlOf(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.url + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /**
   * Sends one JSON call and returns the status and the decoded body; throws
   * the StowageError of any non-2xx answer.
   *
   * @example
   * const { status, body } = await stowage.send<Volume>('PUT', '/v1/volumes/data', { body: {} });
   */
  async send<T>(method: string, path: string, options: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const url = this.urlOf(path, options.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    let payload: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(options.body);
    }
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
      text = await res.text();
    } catch (e) {
      throw this.#unreachable(e, undefined);
    }
    return { status: res.status, body: decodeAnswer<T>(res.status, text, `${method} ${path}`) };
  }

  /**
   * Sends a call whose body or answer is not JSON (bytes, a stream, server-sent
   * events) and returns the response once its head is in; throws the
   * StowageError of any non-2xx answer.
   *
   * @example
   * const res = await stowage.fetchRaw('GET', '/v1/sandboxes/sb_1/files', { query: { path: '/etc/hostname' } });
   */
  async fetchRaw(
    method: string,
    path: string,
    options: {
      query?: RequestOptions['query'];
      body?: Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers, ...this.authHeaders() };
    const body = options.body;
    let res: Response;
    try {
      res = await fetch(this.urlOf(path, options.query), {
        method,
        headers,
        ...(body === undefined ? {} : { body, duplex: 'half' }),
        ...(options.signal ? { signal: options.signal } : {}),
      } as RequestInit);
    } catch (e) {
      throw this.#unreachable(e, options.signal);
    }
    if (!res.ok) throw errorFromResponse(res.status, await res.text(), `${method} ${path}`);
    return res;
  }

  /**
   * Sends `body` as a call's raw request body, streamed, and returns the
   * decoded JSON answer; throws the StowageError of any non-2xx answer (the
   * body is then left unread and destroyed). Node's own HTTP client rather
   * than fetch: fetch turns a streamed body into a web stream and pays for
   * every piece (a 64 MiB sandbox file went at 89-119 MiB/s through it
   * against 115-125 through node:http on the same server).
   *
   * @example
   * const info = await stowage.sendStream('PUT', '/v1/sandboxes/sb_1/files', createReadStream('data.bin'), { query: { path: '/work/data.bin' } });
   */
  sendStream<T>(
    method: string,
    path: string,
    body: Readable,
    options: { query?: RequestOptions['query']; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<T> {
    const url = new URL(this.urlOf(path, options.query));
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers = { accept: 'application/json', ...options.headers, ...this.authHeaders() };
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      const req = send(url, { method, headers, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        answered = true;
        const status = res.statusCode ?? 0;
        // The server answered before taking everything (a refusal): stop sending.
        if (status >= 300) {
          body.unpipe(req);
          body.destroy();
        }
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', (e) => reject(this.#unreachable(e, options.signal)));
        res.on('end', () => {
          try {
            resolve(decodeAnswer<T>(status, Buffer.concat(parts).toString('utf8'), `${method} ${path}`));
          } catch (e) {
            reject(e);
          }
        });
      });
      // Once the answer is in, it decides: a refusal's connection may break under the rest of the body.
      req.on('error', (e) => {
        if (!answered) reject(this.#unreachable(e, options.signal));
      });
      // The caller's own stream failing is its error, not the server's.
      body.on('error', (e) => {
        reject(e);
        req.destroy(e);
      });
      body.pipe(req);
    });
  }

  /** The error of a call that broke on the way: the caller's own abort as it is, anything else as Unavailable. */
  #unreachable(e: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return e;
    return new UnavailableError(`cannot reach Stowage at ${this.url}: ${networkReason(e)}`, { cause: e });
  }

  /**
   * Sends one JSON call and returns the decoded body.
   *
   * @example
   * const { volumes } = await stowage.request<VolumeList>('GET', '/v1/volumes');
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.send<T>(method, path, options)).body;
  }

  /**
   * The tenant the token belongs to.
   *
   * @example
   * const { name, defaultCap } = await stowage.tenant();
   */
  async tenant(): Promise<wire.Tenant> {
    return this.request<wire.Tenant>('GET', '/v1/tenant');
  }

  /**
   * Changes the tenant's default volume cap (bytes).
   *
   * @example
   * await stowage.updateTenant({ defaultCap: 4 * 1024 ** 3 });
   */
  async updateTenant(patch: wire.UpdateTenantRequest): Promise<wire.Tenant> {
    return this.request<wire.Tenant>('PATCH', '/v1/tenant', { body: patch });
  }

  /**
   * Creates an API token; the secret is returned once and never again.
   *
   * @example
   * const { token, secret } = await stowage.createToken({ name: 'ci', volume: 'data', readOnly: true, expiresIn: 3600 });
   */
  async createToken(req: wire.CreateTokenRequest): Promise<wire.CreateTokenResponse> {
    return this.request<wire.CreateTokenResponse>('POST', '/v1/tokens', { body: req });
  }

  /**
   * Lists the tenant's tokens (without secrets).
   *
   * @example
   * for (const t of await stowage.listTokens()) console.log(t.id, t.name);
   */
  async listTokens(): Promise<wire.Token[]> {
    return (await this.request<wire.TokenList>('GET', '/v1/tokens')).tokens;
  }

  /**
   * Revokes a token by id.
   *
   * @example
   * await stowage.revokeToken('tok_0123456789abcdefghij');
   */
  async revokeToken(id: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  /**
   * Extends an attachment's lease and its token's expiry. Call it with the
   * attachment's own token (or a tenant token) well before `tokenExpiresAt`.
   *
   * @example
   * const mount = new Stowage({ url, token: attached.token });
   * const { tokenExpiresAt } = await mount.renewAttachment(attached.attachment.id);
   */
  async renewAttachment(id: string): Promise<wire.RenewAttachmentResponse> {
    return this.request<wire.RenewAttachmentResponse>('POST', `/v1/attachments/${encodeURIComponent(id)}/renew`);
  }

  /**
   * Releases an attachment (or marks it failed, with a reason) and revokes its
   * token; releasing it again changes nothing.
   *
   * @example
   * await stowage.releaseAttachment('att_0123456789abcdefghij');
   * await stowage.releaseAttachment(id, { failed: true, reason: 'sandbox terminated' });
   */
  async releaseAttachment(id: string, req: wire.ReleaseAttachmentRequest = {}): Promise<wire.Attachment> {
    return this.request<wire.Attachment>('POST', `/v1/attachments/${encodeURIComponent(id)}/release`, { body: req });
  }
}

let defaultClient: Stowage | undefined;

/** The client used when a call is given none: built from the environment on first use. */
export function defaultStowage(): Stowage {
  defaultClient ??= Stowage.fromEnv();
  return defaultClient;
}
