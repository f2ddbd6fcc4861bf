/**
 * @module server/share-links
 * Signed file URLs ("share links"): a URL anyone can fetch with plain curl,
 * no bearer token, until it expires. Vocabulary:
 *
 * - grant: what a link allows — one file path of one volume (by id, so a
 *   rename cannot redirect it), pinned to one commit (the link serves exactly
 *   what existed when it was signed), on behalf of the token that signed it
 *   (revoking that token kills its links), until `expires` (unix seconds).
 * - URL shape: `/v1/shared/<volume id>/<path>?commit=&token=&expires=&sig=`.
 *   The path in the URL ends with the file's own name, so downloaders that
 *   name files after the URL get the right name.
 *
 * The signature is HMAC-SHA256 over a version-tagged JSON array of the grant
 * (the same secret as signed blob URLs, a different tag, so a blob signature
 * can never pass as a link signature or the reverse).
 *
 * @example
 * const links = new ShareSigner({ secret, baseUrl: () => server.url });
 * const { url } = links.sign({ volumeId, path: '/a.txt', commit, tokenId }, 3600);
 * const grant = links.verify(new URL(url).pathname, new URL(url).searchParams);
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { parsePath } from '@stowage/sdk/common/paths.js';

/** First element of every signed input; bump it when the format changes. */
export const SHARE_URL_VERSION = 'stowage-share:v1';
/** Where the server serves signed file URLs; the volume id and the file path follow. */
export const SHARE_PATH_PREFIX = '/v1/shared/';
/** Default lifetime of a signed file URL, in seconds. */
export const DEFAULT_SHARE_SECONDS = 3600;
/** Longest lifetime of a signed file URL, in seconds (7 days). */
export const MAX_SHARE_SECONDS = 7 * 86_400;

/** What a signed file URL allows. */
export interface ShareGrant {
  volumeId: string;
  path: string;
  commit: string;
  tokenId: string;
}

/** Signs and verifies share links for one secret. */
export class ShareSigner {
  readonly #secret: Buffer;
  readonly #baseUrl: () => string;

  /** Throws InvalidArgumentError for a secret shorter than 16 bytes. */
  constructor(options: { secret: Buffer | string; baseUrl: string | (() => string) }) {
    const secret =
      typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : Buffer.from(options.secret);
    if (secret.length < 16) throw new InvalidArgumentError('share-link signing secret must be at least 16 bytes');
    this.#secret = secret;
    const { baseUrl } = options;
    this.#baseUrl = typeof baseUrl === 'function' ? baseUrl : () => baseUrl;
  }

  /** A URL granting GET of `grant` for `expiresIn` seconds (rounded up to whole seconds). */
  sign(grant: ShareGrant, expiresIn: number, now: Date = new Date()): { url: string; expiresAt: Date } {
    if (!Number.isSafeInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_SHARE_SECONDS) {
      throw new InvalidArgumentError(
        `expiresIn must be a whole number of seconds between 1 and ${MAX_SHARE_SECONDS} (7 days)`,
      );
    }
    const path = parsePath(grant.path);
    const expires = String(Math.ceil(now.getTime() / 1000 + expiresIn));
    const query = new URLSearchParams({
      commit: grant.commit,
      token: grant.tokenId,
      expires,
      sig: this.#mac({ ...grant, path }, expires),
    });
    const base = this.#baseUrl().replace(/\/+$/, '');
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    return {
      url: `${base}${SHARE_PATH_PREFIX}${encodeURIComponent(grant.volumeId)}${encoded}?${query.toString()}`,
      expiresAt: new Date(Number(expires) * 1000),
    };
  }

  /**
   * Checks a request's raw path (`/v1/shared/...`, still percent-encoded) and
   * query; returns the grant, or throws ForbiddenError saying why not.
   */
  verify(rawPath: string, query: URLSearchParams, now: Date = new Date()): ShareGrant {
    if (!rawPath.startsWith(SHARE_PATH_PREFIX)) throw new ForbiddenError('not a signed file URL');
    const rest = rawPath.slice(SHARE_PATH_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) throw new ForbiddenError('signed file URL names no file: use the URL exactly as it was issued');
    let volumeId: string;
    let path: string;
    try {
      volumeId = decodeURIComponent(rest.slice(0, slash));
      path = parsePath(rest.slice(slash).split('/').map(decodeURIComponent).join('/'));
    } catch {
      throw new ForbiddenError('signed file URL has a malformed path: use the URL exactly as it was issued');
    }
    const commit = single(query, 'commit');
    const tokenId = single(query, 'token');
    const expires = single(query, 'expires');
    const sig = single(query, 'sig');
    if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(sig))
      throw new ForbiddenError(
        'signed file URL has a malformed expiry or signature: use the URL exactly as it was issued',
      );
    const grant: ShareGrant = { volumeId, path, commit, tokenId };
    const expected = Buffer.from(this.#mac(grant, expires), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) {
      throw new ForbiddenError(
        'signed file URL signature does not match: the URL was altered or names another file; ask for a new URL',
      );
    }
    const expiresAt = new Date(Number(expires) * 1000);
    if (now.getTime() > expiresAt.getTime())
      throw new ForbiddenError(`signed file URL expired at ${expiresAt.toISOString()}: ask for a new URL`);
    return grant;
  }

  #mac(grant: ShareGrant, expires: string): string {
    // A JSON array is an unambiguous encoding whatever characters a path holds.
    const input = JSON.stringify([SHARE_URL_VERSION, grant.volumeId, grant.path, grant.commit, grant.tokenId, expires]);
    return createHmac('sha256', this.#secret).update(input, 'utf8').digest('hex');
  }
}

function single(query: URLSearchParams, name: string): string {
  const values = query.getAll(name);
  // A repeated parameter could make the server and the signature read different values.
  if (values.length !== 1)
    throw new ForbiddenError(`signed file URL must carry exactly one "${name}": use the URL exactly as it was issued`);
  return values[0]!;
}
