import { ObjectId, type Collection, type Document } from 'mongodb';
import { JsonBytes } from '../bsonJson';
import type { Limits } from '../config';
import type { Database } from '../db';
import { timed, type Metrics } from '../metrics';
import { Batches, type FindCommand } from './batches';
import { CursorBudget } from './cursorBudget';
import { createIdempotencyRecords } from './idempotency';
import { InsertBatcher } from './insertBatcher';
import { withDeadline } from './deadline';
import { HttpError, isDuplicateKey, outcomeUnknown, writeError } from '../errors';

/**
 * Limits of config.ts (see there), a page query's server-side time limit (maxTimeMS: not found in time is a
 * timeout, told as one), and the longest any one operation may take (see withDeadline).
 */
export type StoreLimits = Pick<Limits, 'maxOpenCursors' | 'maxReadsInFlight' | 'cursorWaitMs' | 'idempotencyTtlSeconds' | 'insertBatchesInFlight'> & {
  queryTimeoutMs: number;
  operationDeadlineMs: number;
};

/** A document as the client sent it (already validated), without `_id`. */
export type NewDocument = Record<string, unknown>;

/** Documents read from an open cursor, as the parts of one JSON array; close() must be called on every exit path. */
export interface DocumentSource {
  /** The array's next part (`[` and documents, then `,` and more; the last one ends with `]`); undefined after it. */
  nextPart(): Promise<Buffer | undefined>;
  /** The last part (with the closing `]`) has been handed out: the cursor is spent. */
  readonly ended: boolean;
  close(): Promise<void>;
}

/** A JSON array of `count` documents (without `_id`); `next` when more follow: where the next page starts. */
export interface Page {
  json: Buffer;
  count: number;
  next?: ObjectId;
}

export interface DataStore {
  /**
   * Stores all documents or none (one document is an array of one). `idempotency`: the client's key and a
   * fingerprint of its body (a retry stores nothing twice); `replayed`: the key was seen before (its first ids).
   */
  insert(documents: NewDocument[], options?: { idempotency?: { key: string; fingerprint: string } }): Promise<{ ids: ObjectId[]; replayed: boolean }>;
  /** Everything, natural order (`_id` order after `after`); the first batch fetched before it resolves. `signal`: the client left. */
  openStream(after: ObjectId | undefined, signal?: AbortSignal): Promise<DocumentSource>;
  /** One page in `_id` order, bounded by count and by JSON `maxChars` (at least one document); its cursor closed before it resolves. */
  readPage(query: { limit: number; after?: ObjectId; maxChars: number }, signal?: AbortSignal): Promise<Page>;
  /** Resolves when this process can really read the collection within `timeoutMs` (not only ping the server). */
  probe(timeoutMs: number): Promise<void>;
  readonly openCursors: number;
}

/**
 * Documents asked for per round trip: 101, MongoDB's first batch (100 come in one round trip; with 100, an
 * empty getMore follows). MongoDB caps a batch at 16 MiB too: what one cursor holds (see MAX_OPEN_CURSORS).
 */
const BATCH = 101;

/** How much JSON a stream takes from its batch at a time: the rest stays compact BSON until asked for. */
const SLICE_BYTES = 64 * 1024;

/** The document with `_id` first; a `__proto__` key (JSON.parse makes it an own field) defined, not set through its setter. */
function withId(id: ObjectId, doc: NewDocument): Document & { _id: ObjectId } {
  const out: Document & { _id: ObjectId } = { _id: id };
  if (!Object.prototype.hasOwnProperty.call(doc, '__proto__')) return Object.assign(out, doc);
  for (const key of Object.keys(doc)) Object.defineProperty(out, key, { value: doc[key], enumerable: true, writable: true, configurable: true });
  return out;
}

/** Owns the collection: the queries, every cursor's lifetime, each operation's timing. The HTTP layer never sees a cursor. */
export function createDataStore(db: Pick<Database, 'collection'>, metrics: Metrics, limits: StoreLimits): DataStore {
  const budget = new CursorBudget(limits.maxOpenCursors, limits.cursorWaitMs, 'MAX_OPEN_CURSORS', (open) => metrics.openCursors.set(open));
  // Pages wait here, not in the driver's pool: readers hold at most this share of it, writes never wait behind them.
  const reads = new CursorBudget(limits.maxReadsInFlight, limits.cursorWaitMs, 'MAX_READS_IN_FLIGHT');
  const idempotency = createIdempotencyRecords(db, limits.idempotencyTtlSeconds);
  // Single-document POSTs that arrive together are stored together (group commit: see InsertBatcher).
  const batcher = new InsertBatcher(() => db.collection(), metrics, { maxInFlight: limits.insertBatchesInFlight, maxDocuments: 1000, deadlineMs: limits.operationDeadlineMs });
  const deadline = () => withDeadline(limits.operationDeadlineMs);
  /** The documents after `after` in `_id` order (all of them, in natural order, without one). */
  const range = (after: ObjectId | undefined): { filter: Document; sort?: Document } => (after ? { filter: { _id: { $gt: after } }, sort: { _id: 1 } } : { filter: {} });

  /** `keyed`: ids from an Idempotency-Key record, some maybe stored by another attempt: a duplicate _id is one of those. */
  async function insertAll(collection: Collection<Document>, documents: Array<Document & { _id: ObjectId }>, keyed: boolean): Promise<void> {
    try {
      if (documents.length === 1) await timed(metrics, 'insertOne', () => collection.insertOne(documents[0], deadline()));
      else await timed(metrics, 'insertMany', () => collection.insertMany(documents, withDeadline(limits.operationDeadlineMs, { ordered: !keyed })));
    } catch (error) {
      if (keyed && isDuplicateKey(error)) return;
      const answer = writeError(error);
      if (answer.status === 400 && documents.length > 1) {
        // An ordered insert keeps the ones before the refused one (FerretDB part of a batch it refuses): taken
        // back by their ids (ours), so that the answer, 400 and nothing stored, is true.
        await timed(metrics, 'deleteMany', () => collection.deleteMany({ _id: { $in: documents.map((doc) => doc._id) } }, deadline())).catch((cause: unknown) => {
          throw outcomeUnknown(cause);
        });
      }
      throw answer;
    }
  }

  return {
    get openCursors() {
      return budget.inUse;
    },

    async insert(documents, { idempotency: key } = {}) {
      let ids = documents.map(() => new ObjectId());
      let replayed = false;
      if (key) {
        ({ ids, replayed } = await idempotency.claim(key.key, key.fingerprint, ids).catch((error: unknown) => {
          throw writeError(error);
        }));
      }
      // Ids are assigned here rather than by the driver, so a compensation or a replay knows them.
      const withIds = documents.map((doc, index) => withId(ids[index], doc));
      // Keyed requests and bulks keep their own insert: their retries and compensations need it alone.
      if (withIds.length === 1 && !key) {
        await batcher.insert(withIds[0]);
        return { ids, replayed };
      }
      try {
        await insertAll(db.collection(), withIds, key !== undefined);
      } catch (error) {
        // A refused body frees its key: it was never stored, and a corrected body may use it.
        if (key && error instanceof HttpError && error.status < 500) await idempotency.forget(key.key).catch(() => undefined);
        throw error;
      }
      return { ids, replayed };
    },

    async openStream(after, signal) {
      const release = await budget.take(signal);
      // The first batch before the caller commits to a status: an unreachable database is still a clean 503.
      const batches = await timed(metrics, 'find', () => Batches.open(db.collection(), { ...range(after), projection: { _id: 0 }, batchSize: BATCH })).catch((error: unknown) => {
        release();
        throw error;
      });
      let held = batches.first; // the batch: its documents not yet written out
      let started = false;
      let ended = false;
      let shut = false;
      return {
        get ended() {
          return ended;
        },
        async nextPart() {
          if (ended) return undefined;
          while (held.length === 0 && !batches.exhausted) held = await batches.next(BATCH);
          // Written out a slice at a time, so that a batch of large documents is not all JSON at once.
          const out = new JsonBytes();
          if (!started) out.push(0x5b);
          let taken = 0;
          while (taken < held.length && (taken === 0 || out.length < SLICE_BYTES)) {
            if (started || taken > 0) out.push(0x2c);
            out.document(held[taken++]);
          }
          started = true;
          held = held.slice(taken);
          // Nothing left here or on the server: this part ends the array (and the response, in the same write).
          if (held.length === 0 && batches.exhausted) {
            out.push(0x5d);
            ended = true;
          }
          return out.take();
        },
        async close() {
          if (shut) return;
          shut = true;
          held = [];
          await batches.close().finally(release);
        },
      };
    },

    async readPage({ limit, after, maxChars }, signal) {
      // A read slot, not a cursor slot: a page's cursor lives only while this call reads it, not at the client's pace.
      const release = await reads.take(signal);
      let batches: Batches | undefined;
      try {
        return await timed(metrics, 'findPage', async (): Promise<Page> => {
          // The shape MongoDB answers from the _id index, every page alike: a range on _id, sorted by it (bounded
          // IXSCAN, no in-memory sort). FerretDB v1.24 ignores the hint and sorts in memory. One batch, of one
          // more than the page (it only says that a next page exists), or less: what fits in MongoDB's 16 MiB.
          const find: FindCommand = { ...range(after), sort: { _id: 1 }, hint: { _id: 1 }, limit: limit + 1, batchSize: limit + 1, maxTimeMS: limits.queryTimeoutMs };
          batches = await Batches.open(db.collection(), find, AbortSignal.timeout(limits.operationDeadlineMs));
          const out = new JsonBytes();
          out.push(0x5b);
          let count = 0;
          let last: ObjectId | undefined;
          for (const raw of batches.first) {
            // The extra document only says that a next page exists; so does one past the size bound.
            const mark = out.length;
            if (count > 0) out.push(0x2c);
            const id = count < limit ? out.document(raw) : undefined;
            if (count === limit || (count > 0 && out.length - 1 - count > maxChars)) {
              out.truncate(mark);
              break;
            }
            count++;
            last = id;
          }
          out.push(0x5d);
          // More than this page: a document past it, or a batch cut at 16 MiB with the cursor still open.
          const more = count < batches.first.length || !batches.exhausted;
          return more && last ? { json: out.take(), count, next: last } : { json: out.take(), count };
        });
      } finally {
        await batches?.close(); // whatever happened; one the server exhausted costs nothing
        release();
      }
    },

    async probe(timeoutMs) {
      // A real read, not a ping: a server that answers pings but has no room for queries is not ready. By an
      // _id that matches nothing, so that no document's content can fail it (FerretDB cannot read some back).
      await db.collection().findOne({ _id: NO_SUCH_ID }, { projection: { _id: 1 }, signal: AbortSignal.timeout(timeoutMs) });
    },
  };
}

const NO_SUCH_ID = new ObjectId('000000000000000000000000');
