import { ObjectId, type Collection, type Document, type FindCursor } from 'mongodb';
import type { Database } from '../db';
import { timed, type Metrics } from '../metrics';
import { CursorBudget } from './cursorBudget';
import { createIdempotencyRecords, type IdempotencyRecords } from './idempotency';
import { StoreError } from './storeError';
import { classifyWriteError, isDuplicateKey } from './writeErrors';

export interface StoreLimits {
  maxOpenCursors: number;
  idempotencyTtlSeconds: number;
}

/** A document as the client sent it (already validated), without `_id`. */
export type NewDocument = Record<string, unknown>;

export interface InsertOutcome {
  ids: ObjectId[];
  /** True when an Idempotency-Key was seen before: the same ids as the first time, nothing stored twice. */
  replayed: boolean;
}

/** Documents read one at a time from an open cursor; close() must be called on every exit path. */
export interface DocumentSource {
  next(): Promise<Document | null>;
  close(): Promise<void>;
}

export interface Page {
  /** Each document already serialised (by the caller's `serialize`). */
  items: string[];
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
  insert(documents: NewDocument[], idempotency?: { key: string; fingerprint: string }): Promise<InsertOutcome>;
  /** Everything, natural order (or `_id` order after `after`), without `_id`; the first batch is fetched before it resolves. */
  openStream(after?: ObjectId): Promise<DocumentSource>;
  /** One page in `_id` order, bounded by count and by serialised size; its cursor is closed before it resolves. */
  readPage(query: PageQuery, serialize: (doc: Document) => string): Promise<Page>;
  /** Resolves when this process can really read the collection within `timeoutMs` (not only ping the server). */
  probe(timeoutMs: number): Promise<void>;
  /** Cursors open right now (for metrics and tests). */
  readonly openCursors: number;
}

/** Batches small enough that one batch of documents near the size limit stays a few MiB. */
const STREAM_BATCH = 100;

/**
 * Owns the collection: the queries, the lifetime of every cursor, and the
 * timing of each operation. The HTTP layer parses and answers; it never sees a
 * driver cursor.
 */
export function createDataStore(db: Pick<Database, 'collection'>, metrics: Metrics, limits: StoreLimits): DataStore {
  const budget = new CursorBudget(limits.maxOpenCursors, (open) => metrics.openCursors.set(open));
  const idempotency: IdempotencyRecords = createIdempotencyRecords(db, limits.idempotencyTtlSeconds);

  /** Runs `work` with a cursor slot, giving it back whatever happens unless the cursor is handed on. */
  const withCursor = <T>(open: (collection: Collection<Document>) => FindCursor<Document>, use: (cursor: FindCursor<Document>, release: () => void) => Promise<T>): Promise<T> => {
    const release = budget.take();
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

  async function insertAll(collection: Collection<Document>, documents: Array<Document & { _id: ObjectId }>, replay: boolean): Promise<void> {
    try {
      if (documents.length === 1) {
        await timed(metrics, 'insertOne', () => collection.insertOne(documents[0]));
      } else {
        // Unordered on a replay: documents the first attempt stored are duplicates by _id, and skipped.
        await timed(metrics, 'insertMany', () => collection.insertMany(documents, { ordered: !replay }));
      }
    } catch (error) {
      if (replay && isDuplicateKey(error)) return;
      const classified = classifyWriteError(error);
      if (classified instanceof StoreError && classified.kind === 'rejected' && documents.length > 1 && !replay) {
        // Ordered inserts stop at the refused document but keep the ones before it: take them back,
        // so the answer (400, nothing stored) is true. Their ids are ours, so nothing else is touched.
        await timed(metrics, 'deleteMany', () => collection.deleteMany({ _id: { $in: documents.map((doc) => doc._id) } }));
      }
      throw classified;
    }
  }

  return {
    get openCursors() {
      return budget.inUse;
    },

    async insert(documents, key) {
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
      // Ids are assigned here rather than by the driver, so a compensation or a replay knows them.
      const withIds = documents.map((doc, index) => Object.assign({ _id: ids[index] }, doc));
      try {
        await insertAll(collection, withIds, replayed);
      } catch (error) {
        // A refused body frees its key: it was never stored, and a corrected body may use it.
        if (key && error instanceof StoreError && error.kind === 'rejected') await idempotency.forget(key.key).catch(() => undefined);
        throw error;
      }
      return { ids, replayed };
    },

    openStream(after) {
      return withCursor(
        (collection) => {
          const cursor = collection.find(after ? { _id: { $gt: after } } : {}, { projection: { _id: 0 }, batchSize: STREAM_BATCH });
          return after ? cursor.sort({ _id: 1 }) : cursor;
        },
        async (cursor, release) => {
          // The first batch before the caller commits to a status: an unreachable database is still a clean 503.
          await timed(metrics, 'find', () => cursor.hasNext());
          let closed = false;
          return {
            next: () => cursor.next(),
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
      );
    },

    async readPage({ limit, after, maxChars }, serialize) {
      // No cursor slot: a page's cursor lives only while this call reads it (never at the client's pace),
      // so concurrent pages are bounded by the connection pool, not by the stream budget.
      const cursor = db
        .collection()
        .find(after ? { _id: { $gt: after } } : {}, { batchSize: Math.min(limit + 1, STREAM_BATCH + 1) })
        .sort({ _id: 1 })
        .limit(limit + 1);
      const items: string[] = [];
      let chars = 0;
      let last: ObjectId | undefined;
      let full = false;
      try {
        await timed(metrics, 'findPage', async () => {
          for (;;) {
            const doc = await cursor.next();
            if (doc === null) return;
            if (items.length === limit) {
              full = true; // the extra document: only says that a next page exists
              return;
            }
            const json = serialize(doc);
            if (items.length > 0 && chars + json.length > maxChars) {
              full = true; // bounded by size: this document starts the next page
              return;
            }
            items.push(json);
            chars += json.length;
            last = doc._id as ObjectId;
          }
        });
      } finally {
        // Closed whatever happened; a cursor the server already exhausted costs nothing to close.
        await cursor.close().catch(() => undefined);
      }
      return full ? { items, next: last } : { items };
    },

    async probe(timeoutMs) {
      // A real read on the collection, not a ping: a server that answers pings but has no room for
      // queries (FerretDB with its backend connections all held by cursors) is not ready.
      await db.collection().findOne({}, { projection: { _id: 1 }, signal: AbortSignal.timeout(timeoutMs) });
    },
  };
}
