/**
 * @module common/json-file
 * Small JSON files the host keeps as records (a supervisor's spec and final
 * state, exec records): written whole or not at all, readable by root only.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/** Writes a JSON file atomically, readable by root only. */
export function writeJsonFile(path: string, value: unknown): void {
  const temp = `${path}.tmp`;
  writeFileSync(temp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

/** A JSON file's value, or undefined when it does not exist. */
export function readJsonFile<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
