import { ObjectId, type Collection, type Document, type FindCursor } from 'mongodb';
import type { Database } from '../db';
import { timed, type Metrics } from '../metrics';
import { CursorBudget } from './cursorBudget';
import { SizeEstimate } from './sizeEstimate';
import { createStoredSizes } from './storedSizes';
import { createIdempotencyRecords, type IdempotencyRecords } from './idempotency';
import { InsertBatcher } from './insertBatcher';
import { withDeadline } from './deadline';
import { StoreError } from './storeError';
import { classifyWriteError, isDuplicateKey } from './writeErrors';

export interface StoreLimits {
  maxOpenCursors: number;
  /** How long a stream waits for a cursor slot before it is turned away (see CursorBudget). */
  cursorWaitMs: number;
  /** The server-side time limit of a page's query (maxTimeMS): a page not found in time is a timeout, told as one. */
  queryTimeoutMs: number;
  idempotencyTtlSeconds: number;
  /** Batches of single-document inserts on their way at once (see InsertBatcher). */
  insertBatchesInFlight: number;
  /** The longest one database operation may take, past the driver's own timeouts (see withDeadline). */
  operationDeadlineMs: number;
  /** The largest document a client can store (the body limit): the size assumed until reads show smaller ones. */
  maxDocumentBytes: number;
}

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

/** Documents read from an open cursor, each already serialised; close() must be called on every exit path. */
export interface DocumentSource {
  /** The documents the cursor holds now (fetching a batch first when it holds none); empty at the end. */
  nextBatch(): Promise<string[]>;
  close(): Promise<void>;
}

export interface Page {
  /** The page as a JSON array of its documents (without `_id`): serialised here, since a page is bounded by its size. */
  json: string;
  /** Documents in it. */
  count: number;
  /** Where the next page starts, when more documents follow. */
  next?: ObjectId;
}

export interface PageQuery {
  limit: number;
  after?: ObjectId;
  /** Stop before the page's serialised size passes this (a page holds at least one document). */
  maxChars: number;
}

export interface DataStore {
  /** Stores all documents or none (one document is an array of one). */
  insert(documents: NewDocument[], options?: InsertOptions): Promise<InsertOutcome>;
  /**
   * Everything, natural order (or `_id` order after `after`); the first batch is fetched before it resolves.
   * `serialize` gets each document without `_id`, as every read answers.
   */
  openStream(after: ObjectId | undefined, serialize: (doc: Document) => string, signal?: AbortSignal): Promise<DocumentSource>;
  /** One page in `_id` order, bounded by count and by serialised size; its cursor is closed before it resolves. */
  readPage(query: PageQuery): Promise<Page>;
  /** Resolves when this process can really read the collection within `timeoutMs` (not only ping the server). */
  probe(timeoutMs: number): Promise<void>;
  /** Cursors open right now (for metrics and tests). */
  readonly openCursors: number;
}

/** Documents asked for per round trip when they are small. */
const STREAM_BATCH = 100;
/**
 * What one batch may weigh. The server caps a batch by count (and MongoDB at 16 MiB, FerretDB not at
 * all), so with documents near the size limit a batch of 100 is 100 MB in this process: batch sizes
 * follow the largest document seen lately instead.
 */
const BATCH_CHARS = 8 * 1024 * 1024;

/**
 * A page whose whole JSON is at most this long is serialised in one call, and its length recorded as the
 * size of its largest document: an overestimate, but one under which batches are full-sized anyway
 * (BATCH_CHARS / (STREAM_BATCH + 1)), so nothing is lost by it.
 */
const WHOLE_PAGE_CHARS = Math.floor(BATCH_CHARS / (STREAM_BATCH + 1));

/** How much serialised output a stream takes from its cursor at a time. */
const SLICE_CHARS = 64 * 1024;

/** Sets how many documents the cursor's next getMore asks for (mongodb 7.9 reads this option on every getMore). */
const setNextBatchSize = (cursor: FindCursor<Document>, size: number): void => {
  (cursor as unknown as { cursorOptions: { batchSize?: number } }).cursorOptions.batchSize = size;
};

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
  const budget = new CursorBudget(limits.maxOpenCursors, limits.cursorWaitMs, (open) => metrics.openCursors.set(open));
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
  /** Serialises each document, keeps the cursor's next batch within BATCH_CHARS, and tells the estimate what it saw. */
  const measured = (cursor: FindCursor<Document>, serialize: (doc: Document) => string, wanted: number) => {
    let largest = 0;
    let next = firstBatch(wanted);
    return (doc: Document): string => {
      const json = serialize(doc);
      if (json.length > largest) {
        largest = json.length;
        sizes.record(largest);
        const size = batchFor(wanted, largest);
        if (size !== next) {
          next = size;
          setNextBatchSize(cursor, size);
        }
      }
      return json;
    };
  };

  /** Runs `work` with a cursor slot, giving it back whatever happens unless the cursor is handed on. */
  const withCursor = async <T>(
    open: (collection: Collection<Document>) => FindCursor<Document>,
    use: (cursor: FindCursor<Document>, release: () => void) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> => {
    const release = await budget.take(signal);
    let cursor: FindCursor<Document>;
    try {
      cursor = open(db.collection());
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
  async function insertAll(collection: Collection<Document>, documents: Array<Document & { _id: ObjectId }>, keyed: boolean, replay: boolean): Promise<void> {
    try {
      if (documents.length === 1) {
        await timed(metrics, 'insertOne', () => collection.insertOne(documents[0], withDeadline(limits.operationDeadlineMs)));
      } else {
        await timed(metrics, 'insertMany', () => collection.insertMany(documents, withDeadline(limits.operationDeadlineMs, { ordered: !keyed })));
      }
    } catch (error) {
      if (keyed && isDuplicateKey(error)) return;
      const classified = classifyWriteError(error);
      if (classified instanceof StoreError && classified.kind === 'rejected' && documents.length > 1 && !replay) {
        // Ordered inserts stop at the refused document but keep the ones before it: take them back,
        // so the answer (400, nothing stored) is true. Their ids are ours, so nothing else is touched.
        await timed(metrics, 'deleteMany', () => collection.deleteMany({ _id: { $in: documents.map((doc) => doc._id) } }, withDeadline(limits.operationDeadlineMs)));
      }
      throw classified;
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
          throw classifyWriteError(error);
        });
        ids = claim.ids;
        replayed = claim.replayed;
      }
      const recording = bodyChars === undefined ? undefined : stored.beforeStore(documents, bodyChars);
      if (recording) {
        await recording.catch((error: unknown) => {
          throw classifyWriteError(error);
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
        await insertAll(collection, withIds, key !== undefined, replayed);
      } catch (error) {
        // A refused body frees its key: it was never stored, and a corrected body may use it.
        if (key && error instanceof StoreError && error.kind === 'rejected') await idempotency.forget(key.key).catch(() => undefined);
        throw error;
      }
      return { ids, replayed };
    },

    openStream(after, serialize, signal) {
      return withCursor(
        (collection) => {
          const cursor = collection.find(after ? { _id: { $gt: after } } : {}, { projection: { _id: 0 }, batchSize: firstBatch(STREAM_BATCH) });
          return after ? cursor.sort({ _id: 1 }) : cursor;
        },
        async (cursor, release) => {
          // The first batch before the caller commits to a status: an unreachable database is still a clean 503.
          await timed(metrics, 'find', () => cursor.hasNext());
          const toJson = measured(cursor, serialize, STREAM_BATCH);
          let closed = false;
          return {
            nextBatch: async () => {
              const doc = await cursor.next();
              if (doc === null) return [];
              // More of what the cursor already holds, without one await per document, up to a slice of
              // the output: documents are decoded only when taken, so the rest stay compact until asked for.
              const batch = [toJson(doc)];
              let chars = batch[0].length;
              while (chars < SLICE_CHARS && cursor.bufferedCount() > 0) {
                const json = toJson(cursor.readBufferedDocuments(1)[0]);
                batch.push(json);
                chars += json.length;
              }
              return batch;
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

    async readPage({ limit, after, maxChars }) {
      // No cursor slot: a page's cursor lives only while this call reads it (never at the client's pace),
      // so concurrent pages are bounded by the connection pool, not by the stream budget.
      const wanted = Math.min(limit + 1, STREAM_BATCH + 1);
      const cursor = db
        .collection()
        // The shape MongoDB answers from the _id index, every page alike: a range on _id, sorted by it
        // (bounded IXSCAN, no in-memory sort). FerretDB v1.24 ignores the hint and sorts in memory.
        .find(after ? { _id: { $gt: after } } : {}, withDeadline(limits.operationDeadlineMs, { batchSize: firstBatch(wanted), maxTimeMS: limits.queryTimeoutMs }))
        .sort({ _id: 1 })
        .hint({ _id: 1 })
        .limit(limit + 1);
      const items: string[] = [];
      let chars = 0;
      let last: ObjectId | undefined;
      let full = false;
      const toJson = measured(cursor, JSON.stringify, wanted);
      /** Adds one document; false once the page is complete. */
      const take = (doc: Document): boolean => {
        if (items.length === limit) {
          full = true; // the extra document: only says that a next page exists
          return false;
        }
        const id = doc._id as ObjectId;
        // Undefined rather than deleted: JSON leaves it out, and the object keeps its shape (fast to serialise).
        doc._id = undefined;
        const json = toJson(doc);
        if (items.length > 0 && chars + json.length > maxChars) {
          full = true; // bounded by size: this document starts the next page
          return false;
        }
        items.push(json);
        chars += json.length;
        last = id;
        return true;
      };
      /** The page of the documents taken one by one. */
      const collected = (): Page => ({ json: `[${items.join(',')}]`, count: items.length, ...(full ? { next: last } : {}) });
      /**
       * The page, when the first batch holds all of it (with its look-ahead document, or all there is):
       * when small, in one JSON.stringify rather than one per document and a join (about a tenth of a
       * page's CPU); when not, document by document from the same documents. Undefined: more to fetch.
       */
      const whole = (first: Document): Page | undefined => {
        const inHand = 1 + cursor.bufferedCount();
        // Either the page and its look-ahead document are here, or the server has nothing more.
        if (inHand <= limit && !(cursor.id?.isZero() ?? false)) return undefined;
        // And its first document says they are small: a batch of large ones (written behind the service's
        // back, so not yet known here) is never decoded and serialised whole, only one at a time.
        const id = first._id as ObjectId;
        first._id = undefined;
        const sample = JSON.stringify(first).length;
        first._id = id;
        if (sample * Math.min(inHand, limit) > WHOLE_PAGE_CHARS) return undefined;
        const docs = [first, ...cursor.readBufferedDocuments(Math.min(inHand - 1, limit))];
        const more = docs.length > limit;
        if (more) docs.length = limit;
        const ids = docs.map((doc) => doc._id as ObjectId);
        for (const doc of docs) doc._id = undefined;
        const json = JSON.stringify(docs);
        if (json.length > Math.min(maxChars, WHOLE_PAGE_CHARS)) {
          // Too large to take whole: document by document, as below, from the same documents.
          docs.forEach((doc, index) => (doc._id = ids[index]));
          if (docs.every(take) && more) full = true;
          return collected();
        }
        sizes.record(json.length);
        return more ? { json, count: docs.length, next: ids[docs.length - 1] } : { json, count: docs.length };
      };
      try {
        return await timed(metrics, 'findPage', async () => {
          const first = await cursor.next();
          if (first === null) return { json: '[]', count: 0 };
          const page = whole(first);
          if (page) return page;
          // Document by document: each measured, and the cursor's next batches following the largest seen.
          for (let doc: Document | null = first; doc !== null && take(doc); doc = await cursor.next()) {
            // The rest of the batch the cursor already holds, without one await per document (and
            // decoded one at a time, so that nothing past the page's end is decoded).
            let more = true;
            while (more && cursor.bufferedCount() > 0) more = take(cursor.readBufferedDocuments(1)[0]);
            if (!more) break;
          }
          return collected();
        });
      } finally {
        // Closed whatever happened; a cursor the server already exhausted costs nothing to close.
        await cursor.close().catch(() => undefined);
      }
    },

    async probe(timeoutMs) {
      // A real read on the collection, not a ping: a server that answers pings but has no room for
      // queries (FerretDB with its backend connections all held by cursors) is not ready.
      await db.collection().findOne({}, { projection: { _id: 1 }, signal: AbortSignal.timeout(timeoutMs) });
    },
  };
}
