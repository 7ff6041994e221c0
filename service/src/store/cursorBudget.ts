import { busy } from '../errors';

/**
 * Reads this process runs at once (streams' open cursors, or pages on their way), and the readers waiting
 * for one: a stream's cursor lives at its reader's pace and holds a batch meanwhile. A reader over the
 * ceiling waits, first come first served, up to `waitMs`; only then is it turned away (503, Retry-After).
 */
export class CursorBudget {
  private open = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly max: number,
    private readonly waitMs: number,
    /** The setting that sets `max`, named in the 503. */
    private readonly limit: string,
    private readonly onChange: (open: number) => void = () => undefined,
  ) {}

  get inUse(): number {
    return this.open;
  }

  /**
   * A slot: at once when one is free and nobody waits, else the next one given back, in turn. Rejects with
   * a 503 when none comes within `waitMs`, or when `signal` aborts (the client left). Resolves with the
   * function that gives the slot back (idempotent).
   */
  async take(signal?: AbortSignal): Promise<() => void> {
    if (this.open < this.max && this.waiting.length === 0) this.onChange(++this.open);
    else {
      await new Promise<void>((resolve, reject) => {
        const settle = (error?: Error) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (!error) return resolve();
          const at = this.waiting.indexOf(settle);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(error);
        };
        const onAbort = () => settle(busy('the client went away while waiting for a read slot'));
        const timer = setTimeout(() => settle(busy(`too many reads in progress: waited ${this.waitMs} ms (CURSOR_WAIT_MS) for one of ${this.limit}=${this.max}; try again shortly`)), this.waitMs);
        this.waiting.push(settle);
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Handed straight to the first waiter (the count stays), or given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.onChange(--this.open);
    };
  }
}
