import type { Collection, ObjectId } from 'mongodb';
import type { Database } from '../db';
import { HttpError, isDuplicateKey } from '../errors';

/** A key, a hash of the body it was first used with, and the ids that body's documents get (a retry reuses them). */
interface KeyRecord {
  _id: string;
  fingerprint: string;
  ids: ObjectId[];
  createdAt: Date;
}

export interface IdempotencyRecords {
  /** The ids to store the request's documents under: new ones on first use, the first request's on a retry. */
  claim(key: string, fingerprint: string, fresh: ObjectId[]): Promise<{ ids: ObjectId[]; replayed: boolean }>;
  forget(key: string): Promise<void>;
}

/**
 * Idempotency keys beside the data (`<collection>_idempotency`), expired by a TTL index. The record is written
 * before the documents, with their ids: a retry after an unknown outcome re-inserts exactly those ids, and
 * the unique `_id` index makes a second copy impossible.
 */
export function createIdempotencyRecords(db: Pick<Database, 'collection'>, ttlSeconds: number): IdempotencyRecords {
  let indexed: Promise<unknown> | undefined;
  const records = (): Collection<KeyRecord> => {
    // Beside the data, in its database (the app's user is granted that one only), on the client it is on now.
    const data = db.collection();
    const collection = data.db.collection<KeyRecord>(`${data.collectionName}_idempotency`);
    // Once per process; a failure (no TTL support) only means keys are kept longer.
    indexed ??= collection.createIndex({ createdAt: 1 }, { expireAfterSeconds: ttlSeconds }).catch(() => (indexed = undefined));
    return collection;
  };

  return {
    async claim(key, fingerprint, fresh) {
      const collection = records();
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await collection.insertOne({ _id: key, fingerprint, ids: fresh, createdAt: new Date() });
          return { ids: fresh, replayed: false };
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
        }
        const seen = await collection.findOne({ _id: key });
        if (seen === null) continue; // expired between the two calls: claim it afresh
        if (seen.fingerprint !== fingerprint) {
          throw new HttpError(422, 'this Idempotency-Key was already used with a different request body');
        }
        return { ids: seen.ids, replayed: true };
      }
      throw new HttpError(504, 'could not record the Idempotency-Key; retry with the same key');
    },
    async forget(key) {
      await records().deleteOne({ _id: key });
    },
  };
}
