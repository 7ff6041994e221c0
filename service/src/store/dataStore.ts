import { ObjectId, type Collection, type Document, type FindCursor } from 'mongodb';
import { JsonBytes } from '../bsonJson';
import type { Limits } from '../config';
import type { Database } from '../db';
import { timed, type Metrics } from '../metrics';
import { CursorBudget } from './cursorBudget';
import { createIdempotencyRecords } from './idempotency';
import { InsertBatcher } from './insertBatcher';
import { withDeadline } from './deadline';
import { HttpError, isDuplicateKey, outcomeUnknown, writeError } from '../errors';

/** The limits of config.ts (see there) that the store keeps, and two of its own. */
export type StoreLimits = Pick<Limits, 'maxOpenCursors' | 'maxReadsInFlight' | 'cursorWaitMs' | 'idempotencyTtlSeconds' | 'insertBatchesInFlight'> & {
  /** The server-side time limit of a page's query (maxTimeMS): a page not found in time is a timeout, told as one. */
  queryTimeoutMs: number;
  /** The longest one database operation may take, past the driver's own timeouts (see withDeadline). */
  operationDeadlineMs: number;
};

/** A document as the client sent it (already validated), without `_id`. */
export type NewDocument = Record<string, unknown>;

export interface InsertOptions {
  /** The client's Idempotency-Key and a fingerprint of its body: a retry stores nothing twice. */
  idempotency?: { key: string; fingerprint: string };
}

export interface InsertOutcome {
  ids: ObjectId[];
  /** True when an Idempotency-Key was seen before: the same ids as the first time, nothing stored twice. */
  replayed: boolean;
}

/** Documents read from an open cursor, as JSON; close() must be called on every exit path. */
export interface DocumentSource {
  /** `lead` (a byte: `[` or `,`) and the next documents as JSON joined by commas (fetching a batch when none is held); undefined at the end. */
  nextBatch(lead: number): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export interface Page {
  /** The page as a JSON array of its documents (without `_id`). */
  json: Buffer;
  /** Documents in it. */
  count: number;
  /** Where the next page starts, when more documents follow. */
  next?: ObjectId;
}

export interface PageQuery {
  limit: number;
  after?: ObjectId;
  /** Stop before the page's JSON passes this many bytes (a page holds at least one document). */
  maxChars: number;
}

export interface DataStore {
  /** Stores all documents or none (one document is an array of one). */
  insert(documents: NewDocument[], options?: InsertOptions): Promise<InsertOutcome>;
  /**
   * Everything, natural order (or `_id` order after `after`), without `_id`; the first batch is fetched
   * before it resolves. Waits for a cursor slot (see CursorBudget); `signal`: the client left.
   */
  openStream(after: ObjectId | undefined, signal?: AbortSignal): Promise<DocumentSource>;
  /** One page in `_id` order, bounded by count and by serialised size; its cursor is closed before it resolves. */
  readPage(query: PageQuery, signal?: AbortSignal): Promise<Page>;
  /** Resolves when this process can really read the collection within `timeoutMs` (not only ping the server). */
  probe(timeoutMs: number): Promise<void>;
  /** Cursors open right now (for metrics and tests). */
  readonly openCursors: number;
}

/**
 * Documents a cursor asks for per round trip: 101, MongoDB's own first batch, so that 100 documents come in
 * one round trip (with 100 the server cannot yet tell that nothing follows, and an empty getMore would be a
 * second). MongoDB also caps a batch at 16 MiB, which bounds what one cursor holds (see MAX_OPEN_CURSORS).
 */
const BATCH = 101;

/** How much JSON a stream takes from its batch at a time: the rest stays compact BSON until asked for. */
const SLICE_BYTES = 64 * 1024;

/**
 * The document with `_id` first. Not Object.assign or a spread: JSON.parse makes `__proto__` an own
 * field, and those run its setter, which would drop it (and set the copy's prototype).
 */
function withId(id: ObjectId, doc: NewDocument): Document & { _id: ObjectId } {
  const out: Document & { _id: ObjectId } = { _id: id };
  if (!Object.prototype.hasOwnProperty.call(doc, '__proto__')) return Object.assign(out, doc);
  for (const key of Object.keys(doc)) Object.defineProperty(out, key, { value: doc[key], enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * Owns the collection: the queries, the lifetime of every cursor, and the
 * timing of each operation. The HTTP layer parses and answers; it never sees a
 * driver cursor.
 */
export function createDataStore(db: Pick<Database, 'collection'>, metrics: Metrics, limits: StoreLimits): DataStore {
  const budget = new CursorBudget(limits.maxOpenCursors, limits.cursorWaitMs, 'MAX_OPEN_CURSORS', (open) => metrics.openCursors.set(open));
  // Pages wait here for their turn rather than in the driver's pool: a reader holds at most this share of
  // the pool, so a write never queues behind readers for a connection.
  const reads = new CursorBudget(limits.maxReadsInFlight, limits.cursorWaitMs, 'MAX_READS_IN_FLIGHT');
  const idempotency = createIdempotencyRecords(db, limits.idempotencyTtlSeconds);
  // Single-document POSTs that arrive together are stored together (group commit: see InsertBatcher).
  const batcher = new InsertBatcher(() => db.collection(), metrics, { maxInFlight: limits.insertBatchesInFlight, maxDocuments: 1000, deadlineMs: limits.operationDeadlineMs });
  const deadline = () => withDeadline(limits.operationDeadlineMs);
  /** Documents as raw BSON, written out as JSON by JsonBytes (never decoded into objects); `_id` order after `after`. */
  const find = (after: ObjectId | undefined, batchSize: number, options: Document = {}): FindCursor<Uint8Array> => {
    const cursor = db.collection().find(after ? { _id: { $gt: after } } : {}, { ...options, batchSize, raw: true }) as unknown as FindCursor<Uint8Array>;
    return after ? cursor.sort({ _id: 1 }) : cursor;
  };

  /**
   * `keyed`: the ids come from an Idempotency-Key record, so another attempt with the same key (earlier,
   * or running right now) may have stored some of them: a duplicate _id is that same document, already
   * stored, and the insert is unordered so that the others still go in.
   */
  async function insertAll(collection: Collection<Document>, documents: Array<Document & { _id: ObjectId }>, keyed: boolean): Promise<void> {
    try {
      if (documents.length === 1) await timed(metrics, 'insertOne', () => collection.insertOne(documents[0], deadline()));
      else await timed(metrics, 'insertMany', () => collection.insertMany(documents, withDeadline(limits.operationDeadlineMs, { ordered: !keyed })));
    } catch (error) {
      if (keyed && isDuplicateKey(error)) return;
      const answer = writeError(error);
      if (answer.status === 400 && documents.length > 1) {
        // A refusal says nothing of the others (an ordered insert keeps the ones before the refused one, and
        // FerretDB stores part of a batch it then refuses): take them all back, so that the answer (400,
        // nothing stored) is true. Their ids are ours, so nothing else is touched.
        await timed(metrics, 'deleteMany', () => collection.deleteMany({ _id: { $in: documents.map((doc) => doc._id) } }, deadline())).catch((cause: unknown) => {
          throw outcomeUnknown(cause);
        });
      }
      throw answer;
    }
  }

  async function readPage(limit: number, after: ObjectId | undefined, maxChars: number): Promise<Page> {
    // The shape MongoDB answers from the _id index, every page alike: a range on _id, sorted by it (bounded
    // IXSCAN, no in-memory sort). FerretDB v1.24 ignores the hint and sorts in memory.
    const cursor = find(after, Math.min(limit + 1, BATCH), { ...deadline(), maxTimeMS: limits.queryTimeoutMs }).sort({ _id: 1 }).hint({ _id: 1 }).limit(limit + 1);
    try {
      return await timed(metrics, 'findPage', async () => {
        const out = new JsonBytes();
        out.push(0x5b);
        let count = 0;
        let last: ObjectId | undefined;
        let more = false;
        // Taken from what the cursor holds without an await each; fetched when it holds none.
        for (let raw = await cursor.next(); raw !== null; raw = cursor.bufferedCount() > 0 ? cursor.readBufferedDocuments(1)[0] : await cursor.next()) {
          more = count === limit; // the extra document only says that a next page exists
          if (more) break;
          const mark = out.length;
          if (count > 0) out.push(0x2c);
          const id = out.document(raw);
          // The documents' bytes so far (the bracket and commas aside) past the bound: this one starts the next page.
          more = count > 0 && out.length - 1 - count > maxChars;
          if (more) {
            out.truncate(mark);
            break;
          }
          count++;
          last = id;
        }
        out.push(0x5d);
        return more && last ? { json: out.take(), count, next: last } : { json: out.take(), count };
      });
    } finally {
      // Closed whatever happened; a cursor the server already exhausted costs nothing to close.
      await cursor.close().catch(() => undefined);
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
      let cursor: FindCursor<Uint8Array> | undefined;
      try {
        cursor = find(after, BATCH, { projection: { _id: 0 } });
        // The first batch before the caller commits to a status: an unreachable database is still a clean 503.
        await timed(metrics, 'find', () => cursor!.hasNext());
      } catch (error) {
        await cursor?.close().catch(() => undefined);
        release();
        throw error;
      }
      const open = cursor;
      let held: Uint8Array[] = [];
      let closed = false;
      return {
        async nextBatch(lead) {
          if (held.length === 0) {
            const first = await open.next();
            if (first === null) return undefined;
            held = [first, ...open.readBufferedDocuments()];
          }
          // Written out a slice at a time, so that a batch of large documents is not all JSON at once.
          const out = new JsonBytes();
          let taken = 0;
          do {
            out.push(taken === 0 ? lead : 0x2c);
            out.document(held[taken++]);
          } while (taken < held.length && out.length < SLICE_BYTES);
          held = held.slice(taken);
          return out.take();
        },
        async close() {
          if (closed) return;
          closed = true;
          held = [];
          try {
            await open.close();
          } finally {
            release();
          }
        },
      };
    },

    async readPage({ limit, after, maxChars }, signal) {
      // No cursor slot: a page's cursor lives only while this call reads it (never at the client's pace),
      // so concurrent pages are bounded by their own share of the connection pool, not by the stream budget.
      const release = await reads.take(signal);
      return readPage(limit, after, maxChars).finally(release);
    },

    async probe(timeoutMs) {
      // A real read on the collection, not a ping: a server that answers pings but has no room for
      // queries (FerretDB with its backend connections all held by cursors) is not ready. By an _id that
      // matches nothing, so that no document's content can fail it (FerretDB cannot read some back).
      await db.collection().findOne({ _id: NO_SUCH_ID }, { projection: { _id: 1 }, signal: AbortSignal.timeout(timeoutMs) });
    },
  };
}

const NO_SUCH_ID = new ObjectId('000000000000000000000000');
