/**
 * @module sandbox/protocol/frames
 * The framing between a sandbox's agent (inside) and its supervisor (on the
 * host): a frame is an 8-byte prefix (header length, body length; unsigned
 * 32-bit big-endian), a JSON header and raw body bytes. Output and file bytes
 * travel as bodies, so nothing is base64'd.
 *
 * The supervisor reads what the agent writes, and code inside the sandbox can
 * take the agent over (it runs as the same user), so a decoder treats its
 * input as hostile: sizes are bounded before anything is buffered, and a
 * header must be a JSON object. A bad frame ends the stream; it never
 * allocates what the prefix claims.
 */

/** Largest JSON header a frame may carry. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Largest body a frame may carry (output and file data are sent in pieces of at most this). */
export const MAX_BODY_BYTES = 1024 * 1024;
const PREFIX = 8;

export interface Frame {
  header: Record<string, unknown>;
  body: Buffer;
}

/** The bytes of one frame. */
export function encodeFrame(header: object, body: Uint8Array = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_HEADER_BYTES) throw new RangeError(`frame header of ${json.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  if (body.byteLength > MAX_BODY_BYTES) throw new RangeError(`frame body of ${body.byteLength} bytes exceeds ${MAX_BODY_BYTES}`);
  const prefix = Buffer.alloc(PREFIX);
  prefix.writeUInt32BE(json.length, 0);
  prefix.writeUInt32BE(body.byteLength, 4);
  return Buffer.concat([prefix, json, body]);
}

/** Why a peer's bytes were refused. */
export class FrameError extends Error {
  override name = 'FrameError';
}

/**
 * Cuts a byte stream into frames. `push` returns the frames completed by a
 * chunk; it throws FrameError on a frame that breaks the bounds or whose
 * header is not a JSON object, after which the decoder must not be used.
 */
export class FrameDecoder {
  #pending: Buffer[] = [];
  #have = 0;
  #need: { header: number; body: number } | undefined;

  push(chunk: Buffer): Frame[] {
    this.#pending.push(chunk);
    this.#have += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#need === undefined) {
        if (this.#have < PREFIX) break;
        const prefix = this.#take(PREFIX);
        const header = prefix.readUInt32BE(0);
        const body = prefix.readUInt32BE(4);
        if (header === 0 || header > MAX_HEADER_BYTES) throw new FrameError(`frame header length ${header} is out of bounds (1..${MAX_HEADER_BYTES})`);
        if (body > MAX_BODY_BYTES) throw new FrameError(`frame body length ${body} exceeds ${MAX_BODY_BYTES}`);
        this.#need = { header, body };
      }
      const { header, body } = this.#need;
      if (this.#have < header + body) break;
      this.#need = undefined;
      const json = this.#take(header);
      frames.push({ header: parseHeader(json), body: this.#take(body) });
    }
    return frames;
  }

  /** Bytes held for a frame not yet complete (a peer that closes mid-frame left these). */
  get buffered(): number {
    return this.#have;
  }

  #take(n: number): Buffer {
    const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#have);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#have = rest.length;
    return out;
  }
}

function parseHeader(json: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch {
    throw new FrameError('frame header is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FrameError('frame header is not a JSON object');
  return value as Record<string, unknown>;
}
