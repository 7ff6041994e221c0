import { MongoBulkWriteError, MongoServerError, type Collection, type Document, type ObjectId } from 'mongodb';
import { isDuplicateKey, outcomeUnknown, writeError, writeErrorsOf } from '../errors';
import { timed, type Metrics } from '../metrics';
import { withDeadline } from './deadline';

/** Batches out at once (more requests wait), documents in one (their bytes bounded by BODY_BUDGET_BYTES), a batch's deadline. */
export interface InsertBatcherLimits {
  maxInFlight: number;
  maxDocuments: number;
  deadlineMs: number;
}

interface Pending {
  doc: Document & { _id: ObjectId };
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for single-document POSTs: those arriving while earlier ones are on their way go together, as
 * one unordered `insertMany` (the driver's work per document falls from about 250 µs for an `insertOne` to
 * 15–45 µs in batches of 8–32: most of a POST's CPU under load). Nothing waits for company: with fewer than
 * `maxInFlight` batches out, what has arrived goes at the next timers (about a millisecond). Each request
 * is answered for its own document once acknowledged: a document the server refuses fails only its own
 * request, an error about no one document (the database away, no answer in time) is every request's, and
 * any other failure (the whole batch refused) is settled document by document.
 */
export class InsertBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly collection: () => Collection<Document>,
    private readonly metrics: Metrics,
    private readonly limits: InsertBatcherLimits,
  ) {}

  /** Resolves once the document is stored; rejects with what its request must be told. */
  insert(doc: Document & { _id: ObjectId }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ doc, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= this.limits.maxInFlight) return;
    this.scheduled = true;
    // At the next turn's timers: every request parsed in this turn goes together. Not at setImmediate, before
    // this turn's `close` callbacks: a pooled socket the server closed in this turn is not yet known to the
    // driver as closed then, and a write on it waits forever (see withDeadline).
    setTimeout(() => {
      this.scheduled = false;
      this.flush();
    }, 0);
  }

  private flush(): void {
    if (this.queue.length === 0 || this.inFlight >= this.limits.maxInFlight) return;
    const batch = this.queue.splice(0, this.limits.maxDocuments);
    this.inFlight++;
    void this.write(batch).finally(() => {
      this.inFlight--;
      this.schedule();
    });
    // Room for another batch and more waiting (more than one batch's worth arrived at once): send it too.
    this.schedule();
  }

  private async write(batch: Pending[]): Promise<void> {
    try {
      const collection = this.collection();
      if (batch.length === 1) await timed(this.metrics, 'insertOne', () => collection.insertOne(batch[0].doc, withDeadline(this.limits.deadlineMs)));
      else await timed(this.metrics, 'insertMany', () => collection.insertMany(batch.map((pending) => pending.doc), withDeadline(this.limits.deadlineMs, { ordered: false })));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      if (batch.length > 1 && !settledByItsErrors(batch, error)) {
        // Refused as a whole (the encoder stops at a document it cannot encode; FerretDB stores part, then
        // answers a code of its own), or a count that does not add up: each goes again alone, told its own fate.
        await Promise.all(batch.map((pending) => this.writeAlone(pending)));
        return;
      }
      if (batch.length === 1) batch[0].reject(writeError(error));
    }
  }

  /** One document alone: a duplicate _id is it, stored by the failed batch; not sent now is no proof it never was. */
  private async writeAlone(pending: Pending): Promise<void> {
    try {
      await timed(this.metrics, 'insertOne', () => this.collection().insertOne(pending.doc, withDeadline(this.limits.deadlineMs)));
      pending.resolve();
    } catch (error) {
      const answer = writeError(error);
      if (isDuplicateKey(error)) pending.resolve();
      else pending.reject(answer.status === 503 ? outcomeUnknown(error) : answer);
    }
  }
}

/**
 * Settles each request of a failed batch from the error alone when it can: an error about the batch that is
 * no refusal (503 or 504 for all), or write errors that single out the refused documents, with a count that
 * adds up (every other one stored). False: settle document by document.
 */
function settledByItsErrors(batch: Pending[], error: unknown): boolean {
  const own = writeErrorsOf(error);
  if (own.length === 0) {
    const answer = writeError(error);
    if (answer.status === 400) return false;
    batch.forEach((pending) => pending.reject(answer));
    return true;
  }
  if (!(error instanceof MongoBulkWriteError) || error.insertedCount !== batch.length - own.length) return false;
  const byIndex = new Map(own.map((one) => [one.index, one]));
  batch.forEach((pending, index) => {
    const one = byIndex.get(index);
    if (one) pending.reject(writeError(new MongoServerError({ message: one.errmsg ?? 'write failed', errmsg: one.errmsg, code: one.code })));
    else pending.resolve();
  });
  return true;
}
