import type { ServerResponse } from 'node:http';
import type { DocumentSource } from './store/dataStore';

/** An error named for what cut the response (the log line's `err.type`). */
const cutError = (name: string, message: string): Error => Object.assign(new Error(message), { name });

/**
 * Writes the source's documents to `res` as one JSON array (chunked), as fast as the client reads. To the
 * response itself: most answers are one batch, and a pipe from a Readable (its abort signals, listeners)
 * cost more than the rest of the work. The source is closed on every way out, and the response cut (an
 * incomplete array, never a short one that parses) with `onError` told why: the source failed, the reader
 * took nothing for `stallTimeoutMs` (it would hold the cursor forever), the stream went on past `maxMs` (a
 * reader taking a little now and then), or the client left.
 */
export function sendJsonArray(res: ServerResponse, source: DocumentSource, stallTimeoutMs: number, maxMs: number, onError: (error: Error) => void): void {
  /** The response was cut (and `onError` told why): nothing more is written. */
  let told = false;
  let stall: NodeJS.Timeout | undefined;
  let wake = (): void => undefined;
  const stalled = () => cut(cutError('StalledReaderError', `the client read nothing for ${stallTimeoutMs} ms; response cut off`));
  // Until the socket has sent the last byte: a reader that never takes the last part is cut like any other.
  const cut = (error: Error) => {
    if (told || res.writableFinished) return;
    told = true;
    onError(error);
    res.destroy();
  };
  const lifetime = setTimeout(() => cut(cutError('StreamTooLongError', `the response was still streaming after ${maxMs} ms (STREAM_MAX_MS); cut off`)), maxMs).unref();
  const closed = () => {
    clearTimeout(lifetime);
    clearTimeout(stall);
    wake();
    // (An error only for a response cut short: built on every close, its stack was a visible share of a read's CPU.)
    if (!told && !res.writableFinished) cut(Object.assign(new Error('the client went away before the response ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    void source.close().catch(() => undefined);
  };
  if (res.destroyed) return closed(); // gone while the first batch came: its close has been and gone
  res.once('close', closed);

  const pump = async () => {
    for (;;) {
      const part = await source.nextPart();
      if (told || part === undefined) return;
      if (source.ended) {
        // The last part and the chunked body's end in one write (most answers are one part: the headers too).
        res.cork();
        const sent = res.write(part);
        res.end();
        if (!sent) stall = setTimeout(stalled, stallTimeoutMs).unref();
        // The cursor is spent: its slot goes back now, not when the socket has sent the end.
        return source.close();
      }
      if (res.write(part)) continue;
      // The socket holds enough: wait until it has sent it, or give up on a reader that takes nothing.
      await new Promise<void>((resolve) => {
        wake = resolve;
        stall = setTimeout(stalled, stallTimeoutMs).unref();
        res.once('drain', resolve);
      });
      clearTimeout(stall);
      res.off('drain', wake);
    }
  };
  pump().catch(cut);
}
