/**
 * How large the documents this process has read lately are. With StoredSizes (what was stored through
 * the service), what a cursor's first batch is sized for; alone (no record: documents stored before
 * the record existed, or behind the service's back), the largest document a client may store until
 * reads show smaller ones, and again after a whole window without reads.
 */
export class SizeEstimate {
  private current = 0;
  private previous = 0;
  private slotStarted: number;

  constructor(
    /** The largest a document can be: the answer while nothing has been seen. */
    private readonly ceiling: number,
    /** How long a sighting counts, in ms (it is kept for one to two slots of half this). */
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.slotStarted = now();
  }

  /** A document of `chars` characters was read. */
  record(chars: number): void {
    this.rotate();
    if (chars > this.current) this.current = chars;
  }

  /** The largest document size to plan for now. */
  largest(): number {
    const seen = this.seen();
    return seen === 0 ? this.ceiling : Math.min(seen, this.ceiling);
  }

  /** The largest document seen within the window; 0 when none was. */
  seen(): number {
    this.rotate();
    return Math.max(this.current, this.previous);
  }

  private rotate(): void {
    const slot = this.windowMs / 2;
    const elapsed = this.now() - this.slotStarted;
    if (elapsed < slot) return;
    this.previous = elapsed < 2 * slot ? this.current : 0;
    this.current = 0;
    this.slotStarted += elapsed < 2 * slot ? slot : elapsed;
  }
}
