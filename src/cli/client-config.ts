/**
 * @module cli/client-config
 * Where the CLI finds its server, token and data dir:
 *
 * - URL: `--url`, else STOWAGE_URL, else http://127.0.0.1:7420;
 * - token: `--token`, else STOWAGE_TOKEN, else the admin token file
 *   `<data dir>/admin-token` that `stowage serve` writes on first start
 *   (so the CLI works out of the box on the server's machine);
 * - data dir (serve and operator commands): `--data`, else STOWAGE_DATA,
 *   else ~/.stowage.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ADMIN_TOKEN_FILE } from '../common/data-dir.js';
import { Stowage } from '@stowage/sdk/client/http-client.js';

/** Options every command accepts. */
export interface GlobalOptions {
  url?: string;
  token?: string;
}

/** The data dir: the option, else STOWAGE_DATA, else ~/.stowage. */
export function dataDirOf(option?: string): string {
  const env = process.env.STOWAGE_DATA;
  return resolve(option ?? (env !== undefined && env !== '' ? env : join(homedir(), '.stowage')));
}

/** The admin token saved in the data dir, when that file exists and is readable. */
export function readAdminToken(dataDir = dataDirOf()): string | undefined {
  try {
    const t = readFileSync(join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    return t === '' ? undefined : t;
  } catch {
    return undefined;
  }
}

/** The token to use: the option, else STOWAGE_TOKEN, else the data dir's admin token. */
export function tokenOf(options: GlobalOptions): string | undefined {
  if (options.token !== undefined && options.token !== '') return options.token;
  const env = process.env.STOWAGE_TOKEN;
  if (env !== undefined && env !== '') return env;
  return readAdminToken();
}

/**
 * A client for the global options.
 *
 * @example
 * const stowage = clientOf(cmd.optsWithGlobals());
 */
export function clientOf(options: GlobalOptions): Stowage {
  const token = tokenOf(options);
  return new Stowage({
    ...(options.url !== undefined ? { url: options.url } : {}),
    ...(token !== undefined ? { token } : {}),
  });
}
