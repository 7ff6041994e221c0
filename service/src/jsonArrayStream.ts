import type { ServerResponse } from 'node:http';
import type { DocumentSource } from './store/dataStore';

export class StalledReaderError extends Error {
  constructor(ms: number) {
    super(`the client read nothing for ${ms} ms; response cut off`);
    this.name = 'StalledReaderError';
  }
}

export class StreamTooLongError extends Error {
  constructor(ms: number) {
    super(`the response was still streaming after ${ms} ms (STREAM_MAX_MS); cut off`);
    this.name = 'StreamTooLongError';
  }
}

/**
 * Writes the source's documents to `res` as one JSON array (chunked), only as fast as the client reads: the
 * next batch is taken once the socket has taken the last. Written to the response itself, not piped from a
 * Readable: most answers are one batch, and a pipeline (a Readable, abort signals, its listeners) cost
 * more than the rest of the stream's work.
 *
 * The source is closed on every way out, and the response cut (the socket destroyed: the client sees an
 * incomplete array, never a short one that parses) with `onError` told why: a source that fails, a reader
 * that takes nothing for `stallTimeoutMs` while we wait on it (a client that stops reading would otherwise
 * hold the cursor forever), a stream still going after `maxMs` (one that reads a little now and then), and
 * a client that leaves first.
 */
export function sendJsonArray(res: ServerResponse, source: DocumentSource, stallTimeoutMs: number, maxMs: number, onError: (error: Error) => void): void {
  /** The response was ended or cut: nothing more is written. */
  let ended = false;
  let stall: NodeJS.Timeout | undefined;
  let wake = (): void => undefined;
  const cut = (error: Error) => {
    if (ended) return;
    ended = true;
    onError(error);
    res.destroy();
  };
  const lifetime = setTimeout(() => cut(new StreamTooLongError(maxMs)), maxMs).unref();
  const closed = () => {
    cut(Object.assign(new Error('the client went away before the response ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    clearTimeout(lifetime);
    clearTimeout(stall);
    wake();
    void source.close().catch(() => undefined);
  };
  // Gone already (while the first batch came)? Then its close has been and gone too.
  if (res.destroyed) return closed();
  res.once('close', closed);

  const pump = async () => {
    for (let lead = 0x5b; ; lead = 0x2c) {
      const batch = await source.nextBatch(lead);
      if (ended) return;
      if (batch === undefined) {
        ended = true;
        res.end(lead === 0x5b ? '[]' : ']');
        // The cursor is spent: its slot goes back now, not when the socket has sent the end.
        return source.close();
      }
      if (res.write(batch)) continue;
      // The socket holds enough: wait until it has sent it, or give up on a reader that takes nothing.
      await new Promise<void>((resolve) => {
        wake = resolve;
        stall = setTimeout(() => cut(new StalledReaderError(stallTimeoutMs)), stallTimeoutMs).unref();
        res.once('drain', resolve);
      });
      clearTimeout(stall);
      res.off('drain', wake);
    }
  };
  pump().catch(cut);
}
