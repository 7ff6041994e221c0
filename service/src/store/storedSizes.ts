import type { Collection } from 'mongodb';
import { siblingCollection, type Database } from '../db';
import { isDuplicateKey } from '../errors';

interface SizesRecord {
  _id: 'largest-body';
  /** The largest document stored so far, as JSON characters, rounded up to a power of two. */
  chars: number;
}

export interface StoredSizes {
  /**
   * Call before storing `documents`, which came in a body of `bodyChars` characters: raises the shared
   * record first, so that any replica finding those documents can find the record too. Writes only when
   * the record grows (sizes rounded up to powers of two: a few writes in a collection's life).
   */
  beforeStore(documents: readonly object[], bodyChars: number): Promise<void> | undefined;
  /** The largest document ever stored through the service, as last read; undefined while no record is known. */
  largest(): number | undefined;
}

/**
 * Raises the record to `chars`. Two first upserts can race, and the loser gets a duplicate key error
 * (the server creates the document once): the record exists then, so the loser updates it again.
 */
async function upsertMax(records: Collection<SizesRecord>, chars: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await records.updateOne({ _id: 'largest-body' }, { $max: { chars } }, { upsert: true });
      return;
    } catch (error) {
      if (!isDuplicateKey(error) || attempt === 3) throw error;
    }
  }
}

const roundUp = (chars: number): number => Math.max(1024, 2 ** Math.ceil(Math.log2(Math.max(chars, 1))));

/**
 * How large the documents stored through the service can be, shared by all replicas in a record beside
 * the data (`<collection>_sizes`). Documents only ever get added (the API deletes nothing), so the
 * largest document stored is an upper bound of every document's size in the collection, whichever
 * replica stored it; pages size their first batch by it. Read again in the background at most every `refreshMs`,
 * so another replica's larger documents are known here within that time. Documents written behind the
 * service's back are not counted here: the store learns of those when it reads them (SizeEstimate).
 */
export function createStoredSizes(db: Pick<Database, 'collection'>, refreshMs = 5_000, now: () => number = Date.now): StoredSizes {
  let known: number | undefined;
  /** The raise on its way, if any: requests that arrive together with the same news wait for one write. */
  let raising: { chars: number; done: Promise<void> } | undefined;
  let readAt = -Infinity;
  let reading = false;
  const records = (): Collection<SizesRecord> => siblingCollection<SizesRecord>(db, 'sizes');
  const raise = (chars: number) => {
    if (known === undefined || chars > known) known = chars;
  };

  return {
    beforeStore(documents, bodyChars) {
      // Nothing to wait for on nearly every call: the body bounds every document in it, and only when that
      // bound is news are the documents measured.
      if (known !== undefined && roundUp(bodyChars) <= known) return undefined;
      const rounded = roundUp(documents.length === 1 ? bodyChars : documents.reduce((most: number, doc) => Math.max(most, JSON.stringify(doc).length), 0));
      if (known !== undefined && rounded <= known) return undefined;
      if (raising && raising.chars >= rounded) return raising.done;
      const done = upsertMax(records(), rounded)
        .then(() => raise(rounded))
        .finally(() => {
          if (raising?.done === done) raising = undefined;
        });
      raising = { chars: rounded, done };
      return done;
    },
    largest() {
      if (!reading && now() - readAt >= refreshMs) {
        reading = true;
        readAt = now();
        records()
          .findOne({ _id: 'largest-body' })
          .then(
            (record) => record && raise(record.chars),
            () => undefined, // the database is away: keep what we knew; the next call tries again later
          )
          .finally(() => (reading = false));
      }
      return known;
    },
  };
}
