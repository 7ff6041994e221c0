import type { ServerResponse } from 'node:http';
import type { DocumentSource } from './store/dataStore';

export class StalledReaderError extends Error {
  override name = 'StalledReaderError';
  constructor(ms: number) {
    super(`the client read nothing for ${ms} ms; response cut off`);
  }
}

export class StreamTooLongError extends Error {
  override name = 'StreamTooLongError';
  constructor(ms: number) {
    super(`the response was still streaming after ${ms} ms (STREAM_MAX_MS); cut off`);
  }
}

/**
 * Writes the source's documents to `res` as one JSON array (chunked), as fast as the client reads. To the
 * response itself: most answers are one batch, and a pipe from a Readable (its abort signals, listeners)
 * cost more than the rest of the work. The source is closed on every way out, and the response cut (an
 * incomplete array, never a short one that parses) with `onError` told why: the source failed, the reader
 * took nothing for `stallTimeoutMs` (it would hold the cursor forever), the stream went on past `maxMs` (a
 * reader taking a little now and then), or the client left.
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
    clearTimeout(lifetime);
    clearTimeout(stall);
    wake();
    // (An error only for a response cut short: built on every close, its stack was a visible share of a read's CPU.)
    if (!ended) cut(Object.assign(new Error('the client went away before the response ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    void source.close().catch(() => undefined);
  };
  if (res.destroyed) return closed(); // gone while the first batch came: its close has been and gone
  res.once('close', closed);

  const pump = async () => {
    for (;;) {
      const part = await source.nextPart();
      if (ended || part === undefined) return;
      if (source.ended) {
        ended = true;
        // The last part and the chunked body's end in one write (most answers are one part: the headers too).
        res.cork();
        res.write(part);
        res.end();
        // The cursor is spent: its slot goes back now, not when the socket has sent the end.
        return source.close();
      }
      if (res.write(part)) continue;
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
