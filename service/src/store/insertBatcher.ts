import { MongoBulkWriteError, MongoServerError, type Collection, type Document, type ObjectId } from 'mongodb';
import { isDuplicateKey, outcomeUnknown, writeError, writeErrorsOf } from '../errors';
import { timed, type Metrics } from '../metrics';
import { withDeadline } from './deadline';

export interface InsertBatcherLimits {
  /** Batches on their way to the database at once; a request arriving while that many are out waits for one. */
  maxInFlight: number;
  /** Documents in one batch (their bytes are bounded by BODY_BUDGET_BYTES: each request holds its body until answered). */
  maxDocuments: number;
  /** The longest one batch may take, whatever the driver does (see withDeadline). */
  deadlineMs: number;
}

interface Pending {
  doc: Document & { _id: ObjectId };
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for single-document POSTs: the ones that arrive while earlier ones are on their way to the
 * database go together, as one unordered `insertMany`. The driver's work per document falls from about
 * 250 µs for an `insertOne` to 15–45 µs in batches of 8–32 (`npm run bench`, instant-reply stub), and
 * under load that is most of a POST's CPU, so the HPA needs fewer replicas for the same writes.
 *
 * Nothing waits for company: with fewer than `maxInFlight` batches out, what has arrived goes at the
 * event loop's next timers (Node's shortest timer: about a millisecond, the only latency a lone client
 * pays). With `maxInFlight` out, requests queue, and the next batch takes them all. Each request is still
 * answered for its own document only, once the database acknowledged it: unordered, a document the
 * server refuses fails only its own request (its error classified as an `insertOne`'s would be), an
 * error that is not about one document (the database away, no answer in time) is every request's, and
 * any other failure (a refusal of the whole batch, for whatever reason) is settled document by document.
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
    // At the start of the event loop's next turn: every request parsed in this turn goes together. Not at
    // setImmediate, which also groups them but runs before the turn's `close` callbacks: a pooled socket
    // the server closed in this turn is destroyed then but not yet known to the driver as closed, and a
    // write on it waits forever (see withDeadline). By the next turn's timers, every such socket is known.
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
      if (batch.length === 1) {
        await timed(this.metrics, 'insertOne', () => collection.insertOne(batch[0].doc, withDeadline(this.limits.deadlineMs)));
      } else {
        const documents = batch.map((pending) => pending.doc);
        await timed(this.metrics, 'insertMany', () => collection.insertMany(documents, withDeadline(this.limits.deadlineMs, { ordered: false })));
      }
      for (const pending of batch) pending.resolve();
    } catch (error) {
      if (batch.length > 1 && !settledByItsErrors(batch, error)) {
        // Refused as a whole (the encoder stops at the first document it cannot encode; FerretDB answers a
        // code of its own after storing part of the batch), or a count that does not add up: each document
        // goes again alone, so that no other request pays for it and each is told its own document's fate.
        await Promise.all(batch.map((pending) => this.writeAlone(pending)));
        return;
      }
      if (batch.length === 1) batch[0].reject(writeError(error));
    }
  }

  /**
   * One document on its own; a duplicate _id is that document, stored by the batch before it failed (the ids
   * are ours). Not sent now is no proof of never stored: the batch may have stored it.
   */
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
 * Settles each request of a failed batch from the error alone, when it can: an error about the batch as a
 * whole that is not a refusal (no server: 503 for all; no answer: 504 for all), or an unordered bulk error
 * whose write errors single out the refused documents and whose count adds up (every other one stored).
 * False when the batch must be settled document by document.
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
