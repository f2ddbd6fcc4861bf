/**
 * @module client/tar-reader
 * A small streaming tar reader (ustar with pax and GNU long-name
 * extensions) for the SDK, which may depend on Node built-ins only. It
 * hands each entry's header and bytes to a callback, in order, reading the
 * source only as fast as the callback consumes it, and checks every header's
 * checksum so a damaged stream fails loudly instead of writing garbage.
 *
 * Entry names are returned as they are in the archive: the caller decides
 * what is a safe place to write them.
 */
import { InternalError } from '../common/errors.js';

/** One entry's header. */
export interface TarHeader {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  size: number;
  linkname: string;
}

const BLOCK = 512;

/** Reads exact byte counts from an async iterable of byte chunks. */
class ByteReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#ended = true;
      return false;
    }
    const piece = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.#buf = this.#buf.length === 0 ? piece : Buffer.concat([this.#buf, piece]);
    return true;
  }

  /** Exactly `n` bytes, or undefined at a clean end of input (nothing buffered). */
  async exact(n: number): Promise<Buffer | undefined> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) {
        if (this.#buf.length === 0) return undefined;
        throw truncated();
      }
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** The next `n` bytes, as they arrive. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw truncated();
      const take = Math.min(left, this.#buf.length);
      const out = this.#buf.subarray(0, take);
      this.#buf = this.#buf.subarray(take);
      left -= take;
      yield out;
    }
  }

  /** Discards `n` bytes. */
  async skip(n: number): Promise<void> {
    for await (const _ of this.pieces(n)) { /* discarded */ }
  }
}

function truncated(): InternalError {
  return new InternalError('the archive stream ended in the middle of an entry: the transfer was cut; try again');
}

function text(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

function octal(b: Buffer, start: number, len: number): number {
  // Base-256 (high bit set) carries numbers too large for octal, e.g. sizes of 8 GiB and more.
  if ((b[start]! & 0x80) !== 0) {
    let n = b[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = text(b, start, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === octal(b, 148, 8);
}

/** pax records: "<len> <key>=<value>\n", repeated. */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.subarray(at, space).toString('ascii'));
    if (!Number.isSafeInteger(len) || len <= 0 || at + len > data.length) break;
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/**
 * Reads a tar stream, calling `onEntry` for each entry in order; `onEntry`
 * must consume `body` (or not: unread bytes are skipped) before it resolves.
 *
 * @example
 * await readTar(response, async (h, body) => { if (h.type === 'file') await pipeline(body, createWriteStream(h.name)); });
 */
export async function readTar(source: AsyncIterable<Uint8Array>, onEntry: (header: TarHeader, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  const reader = new ByteReader(source);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.exact(BLOCK);
    if (block === undefined) return;
    if (block.every((x) => x === 0)) return; // end-of-archive marker
    if (!checksumOk(block)) throw new InternalError('the archive stream has a damaged header (checksum mismatch): try again');
    const flag = String.fromCharCode(block[156]!);
    const size = octal(block, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'L' || flag === 'K') {
      const data = (await reader.exact(padded)) ?? Buffer.alloc(0);
      const body = data.subarray(0, size);
      if (flag === 'x') pax = paxRecords(body);
      else if (flag === 'L') longName = text(body, 0, body.length);
      else longLink = text(body, 0, body.length);
      continue;
    }
    if (flag === 'g') {
      await reader.skip(padded);
      continue;
    }
    const prefix = text(block, 345, 155);
    const plain = text(block, 0, 100);
    const header: TarHeader = {
      name: pax.get('path') ?? longName ?? (prefix !== '' ? `${prefix}/${plain}` : plain),
      type: flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : flag === '2' ? 'symlink' : 'other',
      mode: octal(block, 100, 8),
      mtime: pax.has('mtime') ? Math.round(Number(pax.get('mtime')) * 1000) : octal(block, 136, 12) * 1000,
      size: pax.has('size') ? Number(pax.get('size')) : size,
      linkname: pax.get('linkpath') ?? longLink ?? text(block, 157, 100),
    };
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    const dataSize = header.type === 'file' || header.type === 'other' ? header.size : 0;
    let consumed = 0;
    const body = (async function* () {
      for await (const piece of reader.pieces(dataSize)) {
        consumed += piece.length;
        yield piece;
      }
    })();
    await onEntry(header, body);
    if (consumed < dataSize) await reader.skip(dataSize - consumed);
    await reader.skip(Math.ceil(dataSize / BLOCK) * BLOCK - dataSize);
  }
}
