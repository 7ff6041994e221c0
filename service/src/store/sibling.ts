import type { Collection, Document } from 'mongodb';
import type { Database } from '../db';

/**
 * The store's own records beside the data, as `<collection>_<suffix>` in the same database (so the app's
 * user, granted that database only, can use them), on the client the data is on right now (see Database).
 */
export function siblingCollection<T extends Document>(db: Pick<Database, 'collection'>, suffix: string): Collection<T> {
  const data = db.collection();
  return data.db.collection<T>(`${data.collectionName}_${suffix}`);
}
