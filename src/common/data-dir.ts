/**
 * @module data-dir
 * The layout of an embedded data dir, shared by the server (which writes it)
 * and the CLI (which reads the admin token from it without loading the server).
 */

/** SQLite metadata database of the embedded deployment. */
export const METADATA_FILE = 'metadata.db';
/** Local blob store directory of the embedded deployment. */
export const BLOBS_DIR = 'blobs';
/** The first tenant's admin token, mode 0600, written on first start. */
export const ADMIN_TOKEN_FILE = 'admin-token';
