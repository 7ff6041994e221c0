import { Readable } from 'node:stream';
import type { DocumentSource } from './store/dataStore';

/** What the stream holds before it waits for its reader (the source hands over up to 64 KiB at a time). */
const HIGH_WATER_BYTES = 16 * 1024;

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
 * A JSON array streamed from a source of documents written out as JSON, pulled only as fast as the
 * client reads. The source is closed on every way out: the end, an error, the
 * stream destroyed (Koa destroys the body when the response closes or is
 * aborted), a reader that takes nothing for `stallTimeoutMs` while we wait
 * on it (a client that stops reading would otherwise hold the cursor forever),
 * and a stream still going after `maxMs` (one that reads a little now and then).
 */
export class JsonArrayStream extends Readable {
  private started = false;
  private pulling = false;
  private stallTimer?: NodeJS.Timeout;
  private readonly lifetime: NodeJS.Timeout;

  constructor(
    private readonly source: DocumentSource,
    private readonly stallTimeoutMs: number,
    maxMs: number,
  ) {
    super({ highWaterMark: HIGH_WATER_BYTES });
    this.lifetime = setTimeout(() => this.destroy(new StreamTooLongError(maxMs)), maxMs);
    this.lifetime.unref();
  }

  override _read(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.pulling) return;
    this.pulling = true;
    this.pull().then(
      () => (this.pulling = false),
      (error: Error) => this.destroy(error),
    );
  }

  private async pull(): Promise<void> {
    let wantsMore = true;
    while (wantsMore) {
      const batch = await this.source.nextBatch();
      if (this.destroyed) return;
      if (batch === undefined) {
        this.push(this.started ? ']' : '[]');
        this.push(null);
        await this.source.close();
        return;
      }
      this.push(this.started ? ',' : '[');
      this.started = true;
      wantsMore = this.push(batch);
    }
    // The reader's buffer is full: it has this long to take some before we give up on it.
    this.stallTimer = setTimeout(() => this.destroy(new StalledReaderError(this.stallTimeoutMs)), this.stallTimeoutMs);
    this.stallTimer.unref();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.stallTimer);
    clearTimeout(this.lifetime);
    this.source.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}
