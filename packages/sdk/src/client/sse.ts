/**
 * @module client/sse
 * Server-sent events read from a response body: the change watch and exec
 * output both arrive this way.
 */

/** One parsed server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Splits a byte stream into server-sent events (comments and unknown fields dropped). */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const bytes of body) {
    buf += decoder.decode(bytes, { stream: true }).replace(/\r\n?/g, '\n');
    for (let end = buf.indexOf('\n\n'); end !== -1; end = buf.indexOf('\n\n')) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const ev: SseEvent = { event: 'message', data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') ev.event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') ev.id = value;
      }
      if (data.length === 0) continue;
      ev.data = data.join('\n');
      yield ev;
    }
  }
}
