import { ObjectId, type Collection, type Document, type FindCursor, type FindOptions } from 'mongodb';
import { JsonBytes } from '../bsonJson';
import type { Limits } from '../config';
import type { Database } from '../db';
import { timed, type Metrics } from '../metrics';
import { CursorBudget } from './cursorBudget';
import { SizeEstimate } from './sizeEstimate';
import { createStoredSizes } from './storedSizes';
import { createIdempotencyRecords, type IdempotencyRecords } from './idempotency';
import { InsertBatcher } from './insertBatcher';
import { withDeadline } from './deadline';
import { HttpError, isDuplicateKey, outcomeUnknown, writeError } from '../errors';

/** The limits of config.ts (see there) that the store keeps, and three of its own. */
export type StoreLimits = Pick<Limits, 'maxOpenCursors' | 'maxReadsInFlight' | 'cursorWaitMs' | 'idempotencyTtlSeconds' | 'insertBatchesInFlight'> & {
  /** The server-side time limit of a page's query (maxTimeMS): a page not found in time is a timeout, told as one. */
  queryTimeoutMs: number;
  /** The longest one database operation may take, past the driver's own timeouts (see withDeadline). */
  operationDeadlineMs: number;
  /** The largest document a client can store (the body limit): the size assumed until reads show smaller ones. */
  maxDocumentBytes: number;
};

/** A document as the client sent it (already validated), without `_id`. */
export type NewDocument = Record<string, unknown>;

export interface InsertOptions {
  /** The client's Idempotency-Key and a fingerprint of its body: a retry stores nothing twice. */
  idempotency?: { key: string; fingerprint: string };
  /** The size of the body the documents came in (an upper bound of each one's size): recorded for batch sizing. */
  bodyChars?: number;
}

export interface InsertOutcome {
  ids: ObjectId[];
  /** True when an Idempotency-Key was seen before: the same ids as the first time, nothing stored twice. */
  replayed: boolean;
}

/** Documents read from an open cursor, as JSON; close() must be called on every exit path. */
export interface DocumentSource {
  /** The documents the cursor holds now (fetching a batch first when it holds none), as JSON joined by commas; undefined at the end. */
  nextBatch(): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export interface Page {
  /** The page as a JSON array of its documents (without `_id`): written here, since a page is bounded by its size. */
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
 * Documents asked for per round trip when they are small: 101, as MongoDB's own first batch, so that a
 * collection of 100 is read in one round trip (with 100, the server cannot yet tell that nothing follows,
 * and an empty getMore was a second round trip for every such stream).
 */
const STREAM_BATCH = 101;
/**
 * What one batch may weigh. The server caps a batch by count (and MongoDB at 16 MiB, FerretDB not at
 * all), so with documents near the size limit a batch of 100 is 100 MB in this process: batch sizes
 * follow the largest document seen lately instead.
 */
const BATCH_CHARS = 8 * 1024 * 1024;

/** How much JSON a stream takes from its cursor at a time. */
const SLICE_BYTES = 64 * 1024;

/**
 * Sets how many documents the cursor's next getMore asks for. The driver's private `cursorOptions` (its
 * `batchSize()` refuses a started cursor; mongodb 7.9 reads the option on every getMore): without it a cold
 * page of 100 small documents takes 12 getMores of 8, or a stream meeting 1 MiB documents asks for 101 of
 * them at once. test/service/store.test.ts fails when a driver upgrade stops reading it.
 */
const setNextBatchSize = (cursor: FindCursor<Uint8Array>, size: number): void => {
  (cursor as unknown as { cursorOptions: { batchSize?: number } }).cursorOptions.batchSize = size;
};

/** The page written so far, closed; `next` when more documents follow. */
function page(out: JsonBytes, count: number, next?: ObjectId): Page {
  out.push(0x5d);
  return next ? { json: out.take(), count, next } : { json: out.take(), count };
}

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
  const idempotency: IdempotencyRecords = createIdempotencyRecords(db, limits.idempotencyTtlSeconds);
  // Single-document POSTs that arrive together are stored together (group commit: see InsertBatcher).
  const batcher = new InsertBatcher(() => db.collection(), metrics, {
    maxInFlight: limits.insertBatchesInFlight,
    maxDocuments: 1000,
    maxChars: BATCH_CHARS,
    deadlineMs: limits.operationDeadlineMs,
  });

  // A cursor's first batch is sized for the largest document the collection can hold as far as anyone
  // knows: the largest body stored through the service (by any replica), and the largest document read
  // here lately (which covers documents stored behind the service's back once they are read). With neither
  // known, for the largest a client may store. Each cursor then follows the largest document it shows.
  // Why it matters: the server caps a batch by count (MongoDB also at 16 MiB, FerretDB not at all), and a
  // first batch sized for 1 MiB documents (8 of them) costs a page of small ones a second round trip, about
  // a tenth of the CPU of `GET /data?limit=100`.
  const sizes = new SizeEstimate(limits.maxDocumentBytes);
  const stored = createStoredSizes(db);
  const batchFor = (wanted: number, largest: number): number => Math.max(2, Math.min(wanted, Math.floor(BATCH_CHARS / Math.max(largest, 256))));
  const firstBatch = (wanted: number): number => {
    const known = stored.largest();
    return batchFor(wanted, known === undefined ? sizes.largest() : Math.max(known, sizes.seen()));
  };
  /**
   * Writes each raw document as JSON into `out`, keeps the cursor's next batch within BATCH_CHARS, and tells
   * the estimate what it saw (a document's BSON size: within a few per cent of its JSON's).
   */
  const writer = (cursor: FindCursor<Uint8Array>, out: JsonBytes, wanted: number) => {
    let largest = 0;
    let next = firstBatch(wanted);
    return (raw: Uint8Array): ObjectId | undefined => {
      if (raw.byteLength > largest) {
        largest = raw.byteLength;
        sizes.record(largest);
        const size = batchFor(wanted, largest);
        if (size !== next) {
          next = size;
          setNextBatchSize(cursor, size);
        }
      }
      return out.document(raw);
    };
  };
  /** The raw options: documents as BSON bytes, written out as JSON by JsonBytes (never decoded into objects). */
  const find = (filter: Document, options: FindOptions) => db.collection().find(filter, { ...options, raw: true }) as unknown as FindCursor<Uint8Array>;

  /** Runs `work` with a cursor slot, giving it back whatever happens unless the cursor is handed on. */
  const withCursor = async <T>(
    open: () => FindCursor<Uint8Array>,
    use: (cursor: FindCursor<Uint8Array>, release: () => void) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> => {
    const release = await budget.take(signal);
    let cursor: FindCursor<Uint8Array>;
    try {
      cursor = open();
    } catch (error) {
      release();
      throw error;
    }
    return use(cursor, release).catch(async (error: unknown) => {
      await cursor.close().catch(() => undefined);
      release();
      throw error;
    });
  };

  /**
   * `keyed`: the ids come from an Idempotency-Key record, so another attempt with the same key (earlier,
   * or running right now) may have stored some of them: a duplicate _id is that same document, already
   * stored, and the insert is unordered so that the others still go in.
   */
  async function insertAll(collection: Collection<Document>, documents: Array<Document & { _id: ObjectId }>, keyed: boolean): Promise<void> {
    try {
      if (documents.length === 1) {
        await timed(metrics, 'insertOne', () => collection.insertOne(documents[0], withDeadline(limits.operationDeadlineMs)));
      } else {
        await timed(metrics, 'insertMany', () => collection.insertMany(documents, withDeadline(limits.operationDeadlineMs, { ordered: !keyed })));
      }
    } catch (error) {
      if (keyed && isDuplicateKey(error)) return;
      const answer = writeError(error);
      if (answer.status === 400 && documents.length > 1) {
        // A refusal says nothing of the others (an ordered insert keeps the ones before the refused one, and
        // FerretDB stores part of a batch it then refuses): take them all back, so that the answer (400,
        // nothing stored) is true. Their ids are ours, so nothing else is touched.
        await timed(metrics, 'deleteMany', () => collection.deleteMany({ _id: { $in: documents.map((doc) => doc._id) } }, withDeadline(limits.operationDeadlineMs))).catch((cause: unknown) => {
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

    async insert(documents, { idempotency: key, bodyChars } = {}) {
      const collection = db.collection();
      let ids = documents.map(() => new ObjectId());
      let replayed = false;
      if (key) {
        const claim = await idempotency.claim(key.key, key.fingerprint, ids).catch((error: unknown) => {
          throw writeError(error);
        });
        ids = claim.ids;
        replayed = claim.replayed;
      }
      const recording = bodyChars === undefined ? undefined : stored.beforeStore(documents, bodyChars);
      if (recording) {
        await recording.catch((error: unknown) => {
          throw writeError(error);
        });
      }
      // Ids are assigned here rather than by the driver, so a compensation or a replay knows them.
      const withIds = documents.map((doc, index) => withId(ids[index], doc));
      if (withIds.length === 1 && !key) {
        // Keyed requests and bulks keep their own insert: their retries and compensations need it alone.
        await batcher.insert(withIds[0], bodyChars ?? 0);
        return { ids, replayed };
      }
      try {
        await insertAll(collection, withIds, key !== undefined);
      } catch (error) {
        // A refused body frees its key: it was never stored, and a corrected body may use it.
        if (key && error instanceof HttpError && error.status < 500) await idempotency.forget(key.key).catch(() => undefined);
        throw error;
      }
      return { ids, replayed };
    },

    openStream(after, signal) {
      return withCursor(
        () => {
          const cursor = find(after ? { _id: { $gt: after } } : {}, { projection: { _id: 0 }, batchSize: firstBatch(STREAM_BATCH) });
          return after ? cursor.sort({ _id: 1 }) : cursor;
        },
        async (cursor, release) => {
          // The first batch before the caller commits to a status: an unreachable database is still a clean 503.
          await timed(metrics, 'find', () => cursor.hasNext());
          const out = new JsonBytes();
          const write = writer(cursor, out, STREAM_BATCH);
          let closed = false;
          return {
            nextBatch: async () => {
              const first = await cursor.next();
              if (first === null) return undefined;
              // More of what the cursor already holds, without one await per document, up to a slice of
              // the output: documents are written out only when taken, so the rest stay compact until asked for.
              out.truncate(0);
              write(first);
              while (out.length < SLICE_BYTES && cursor.bufferedCount() > 0) {
                out.push(0x2c);
                write(cursor.readBufferedDocuments(1)[0]);
              }
              return out.take(true);
            },
            async close() {
              if (closed) return;
              closed = true;
              try {
                await cursor.close();
              } finally {
                release();
              }
            },
          };
        },
        signal,
      );
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

  async function readPage(limit: number, after: ObjectId | undefined, maxChars: number): Promise<Page> {
    const wanted = Math.min(limit + 1, STREAM_BATCH);
    const cursor = find(after ? { _id: { $gt: after } } : {}, withDeadline(limits.operationDeadlineMs, { batchSize: firstBatch(wanted), maxTimeMS: limits.queryTimeoutMs }))
      // The shape MongoDB answers from the _id index, every page alike: a range on _id, sorted by it
      // (bounded IXSCAN, no in-memory sort). FerretDB v1.24 ignores the hint and sorts in memory.
      .sort({ _id: 1 })
      .hint({ _id: 1 })
      .limit(limit + 1);
    const out = new JsonBytes();
    const write = writer(cursor, out, wanted);
    let count = 0;
    let last: ObjectId | undefined;
    try {
      return await timed(metrics, 'findPage', async () => {
        out.push(0x5b);
        // Taken from what the cursor holds without an await each; fetched when it holds none.
        for (let raw = await cursor.next(); raw !== null; raw = cursor.bufferedCount() > 0 ? cursor.readBufferedDocuments(1)[0] : await cursor.next()) {
          // The extra document only says that a next page exists.
          if (count === limit) return page(out, count, last);
          const mark = out.length;
          if (count > 0) out.push(0x2c);
          const id = write(raw);
          // The documents' bytes so far (the bracket and commas aside) past the bound?
          if (count > 0 && out.length - 1 - count > maxChars) {
            out.truncate(mark); // bounded by size: this document starts the next page
            return page(out, count, last);
          }
          count++;
          last = id;
        }
        return page(out, count);
      });
    } finally {
      // Closed whatever happened; a cursor the server already exhausted costs nothing to close.
      await cursor.close().catch(() => undefined);
    }
  }
}

const NO_SUCH_ID = new ObjectId('000000000000000000000000');
