/**
 * How large documents in the collection are lately, as this process has seen them (documents it read,
 * bodies it stored): what a cursor's first batch is sized for.
 *
 * Why guess at all: the server caps a batch by count (MongoDB also at 16 MiB, FerretDB not at all),
 * so a first batch sized for the largest document a client may store (a few documents) is safe but
 * costs a second round trip on every page of small documents; that round trip was about a tenth of
 * the CPU of `GET /data?limit=100`. Sized for what was seen, a page of small documents comes in one.
 *
 * The guess can only be wrong for documents stored by another replica and not yet read here; one
 * POST carries at most the body limit, so a batch holds as many large documents as there were such
 * POSTs inside the window. With nothing seen for a whole window (a new or idle process) the estimate is
 * the largest document a client may store again.
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

  /** A document (or a body holding documents) of `chars` characters was seen. */
  record(chars: number): void {
    this.rotate();
    if (chars > this.current) this.current = chars;
  }

  /** The largest document size to plan for now. */
  largest(): number {
    this.rotate();
    const seen = Math.max(this.current, this.previous);
    return seen === 0 ? this.ceiling : Math.min(seen, this.ceiling);
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
