/**
 * One update at a time, and edits that arrive during an update make ONE next update (not one per
 * save): a `pulumi up` takes seconds, a developer saves several times in that while, and only the
 * last state of the files matters. A short settle time first gathers the bursts one save makes (an
 * editor writing a temp file and renaming it, a formatter saving several files).
 */

export interface Batch {
  /** The files that changed, each once, in the order they were first seen. */
  files: string[];
  /** When the first of them was seen (ms since the epoch): "save" for the save-to-answer figure. */
  firstAt: number;
}

export class UpdateQueue {
  private pending: Batch | undefined;
  private lastEventAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly update: (batch: Batch) => Promise<void>,
    private readonly options: { settleMs?: number; onError?: (error: unknown) => void; now?: () => number } = {},
  ) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  private get settleMs(): number {
    return this.options.settleMs ?? 150;
  }

  /** Whether an update is running now. */
  get busy(): boolean {
    return this.current !== undefined;
  }

  /** A file changed; true when it is new in the waiting batch (for saying so once). */
  submit(file: string): boolean {
    if (this.stopped) return false;
    const at = this.now;
    this.lastEventAt = at;
    if (!this.pending) this.pending = { files: [], firstAt: at };
    const added = !this.pending.files.includes(file);
    if (added) this.pending.files.push(file);
    if (!this.current) this.schedule();
    return added;
  }

  /** Starts the pending batch once no event has come for settleMs. */
  private schedule(): void {
    clearTimeout(this.timer);
    const wait = Math.max(0, this.lastEventAt + this.settleMs - this.now);
    this.timer = setTimeout(() => this.start(), wait);
  }

  private start(): void {
    this.timer = undefined;
    if (this.stopped || this.current || !this.pending) return;
    if (this.now - this.lastEventAt < this.settleMs) return this.schedule();
    const batch = this.pending;
    this.pending = undefined;
    this.current = this.update(batch)
      .catch((error: unknown) => this.options.onError?.(error))
      .finally(() => {
        this.current = undefined;
        // Whatever came in meanwhile is one batch: the next update.
        if (this.pending && !this.stopped) this.schedule();
      });
  }

  /** No more updates; resolves when the running one (if any) has ended. Pending edits are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.pending = undefined;
    await this.current;
  }

  /** Resolves when nothing is running or waiting (for tests). */
  async idle(): Promise<void> {
    while (this.current || this.pending) {
      if (this.current) await this.current;
      else await new Promise((resolve) => setTimeout(resolve, this.settleMs));
    }
  }
}
