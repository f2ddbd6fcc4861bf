/**
 * @module limits
 * Bounds the server enforces and clients plan for, in one place both sides import.
 */

/**
 * Largest change set one commit accepts (413 above it). A bigger one would
 * hold a volume's commit lock and the server's memory for seconds; clients
 * split (the SDK's directory upload does) or are told to.
 */
export const MAX_COMMIT_CHANGES = 100_000;
