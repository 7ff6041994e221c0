import { MongoBulkWriteError, MongoServerError, type Collection, type Document, type ObjectId, type WriteError } from 'mongodb';
import { timed, type Metrics } from '../metrics';
import { withDeadline } from './deadline';
import { StoreError } from './storeError';
import { classifyWriteError, isDuplicateKey, OUTCOME_UNKNOWN } from './writeErrors';

export interface InsertBatcherLimits {
  /** Batches on their way to the database at once; a request arriving while that many are out waits for one. */
  maxInFlight: number;
  /** Documents in one batch. */
  maxDocuments: number;
  /** Characters of request body in one batch (a bound on its size in BSON, give or take). */
  maxChars: number;
  /** The longest one batch may take, whatever the driver does (see withDeadline). */
  deadlineMs: number;
}

interface Pending {
  doc: Document & { _id: ObjectId };
  chars: number;
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
 * server refuses fails only its own request (its error classified as an `insertOne`'s would be), and an
 * error that is not about one document (the database away, no answer in time) is every request's.
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
  insert(doc: Document & { _id: ObjectId }, chars: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ doc, chars, resolve, reject });
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
    let count = 0;
    let chars = 0;
    while (count < this.queue.length && count < this.limits.maxDocuments && (count === 0 || chars + this.queue[count].chars <= this.limits.maxChars)) {
      chars += this.queue[count].chars;
      count++;
    }
    const batch = this.queue.splice(0, count);
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
      if (batch.length > 1 && mayBeOneDocuments(error)) {
        // Refused as a whole for a reason that may be one document's (the encoder stops at the first it
        // cannot encode): each goes again alone, so that no other request pays for it.
        await Promise.all(batch.map((pending) => this.writeAlone(pending)));
        return;
      }
      settleFailed(batch, error);
    }
  }

  /** One document on its own; a duplicate _id is that document, stored by the batch before it failed (the ids are ours). */
  private async writeAlone(pending: Pending): Promise<void> {
    try {
      await timed(this.metrics, 'insertOne', () => this.collection().insertOne(pending.doc, withDeadline(this.limits.deadlineMs)));
      pending.resolve();
    } catch (error) {
      if (isDuplicateKey(error)) pending.resolve();
      else pending.reject(classifyWriteError(error));
    }
  }
}

/** A failure of the whole batch, with no document singled out, that says a document was refused. */
function mayBeOneDocuments(error: unknown): boolean {
  const own = error instanceof MongoBulkWriteError ? writeErrorsByIndex(error) : undefined;
  if (own !== undefined && own.size > 0) return false;
  const classified = classifyWriteError(error);
  return classified instanceof StoreError && classified.kind === 'rejected';
}

/** Each request of a failed batch gets its own document's error, or the batch's when nothing singles it out. */
function settleFailed(batch: Pending[], error: unknown): void {
  const rejectAll = (reason: unknown) => batch.forEach((pending) => pending.reject(reason));
  const own = error instanceof MongoBulkWriteError ? writeErrorsByIndex(error) : undefined;
  if (own === undefined || own.size === 0) {
    // About the batch, not a document: no server, no reply, a write concern not met (the driver reports
    // that as a bulk error without write errors). Classified as an insertOne's would be.
    rejectAll(classifyWriteError(error));
    return;
  }
  // Unordered: every document without an error of its own was stored. A count that does not add up is
  // not trusted: nobody is told "stored", nor "refused".
  if ((error as MongoBulkWriteError).insertedCount !== batch.length - own.size) {
    rejectAll(new StoreError('outcome-unknown', OUTCOME_UNKNOWN, { cause: error }));
    return;
  }
  batch.forEach((pending, index) => {
    const writeError = own.get(index);
    if (writeError) pending.reject(classifyWriteError(serverError(writeError)));
    else pending.resolve();
  });
}

/** What an insertOne of that one document would have thrown. */
const serverError = ({ errmsg, code }: { errmsg?: string; code?: number }): MongoServerError =>
  new MongoServerError({ message: errmsg ?? 'write failed', errmsg, code });

function writeErrorsByIndex(error: MongoBulkWriteError): Map<number, WriteError> {
  const writeErrors = error.writeErrors;
  const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
  return new Map(list.map((writeError) => [writeError.index, writeError]));
}
