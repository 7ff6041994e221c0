import { Long, ReadPreference, type ClientSession, type Collection, type Document } from 'mongodb';
import { retryableRead } from '../errors';

/** A find command's fields after `find: <collection>` (filter, projection, sort, hint, limit, maxTimeMS: MongoDB's own names). */
export type FindCommand = { filter: Document; batchSize: number } & Document;

/** Replies read with each batch's documents left as raw BSON (JsonBytes writes them out) and the cursor id a Long (getMore needs one). */
const REPLY = { fieldsAsRaw: { firstBatch: true, nextBatch: true }, promoteLongs: false } as const;

interface CursorReply {
  cursor: { id: Long; firstBatch?: Buffer[]; nextBatch?: Buffer[] };
}

/**
 * A query's results as batches of raw BSON, read with MongoDB's find, getMore and killCursors in a session of
 * their own (a cursor belongs to the session that opened it). Not the driver's FindCursor: even with `raw:
 * true` it makes an object of every document before handing out its bytes, a third of a read's CPU
 * (docs/performance.md). The find is tried again on what the driver's retryable reads retry, as its cursor
 * did (a getMore is not, as the driver's is not). close() must be called on every exit path.
 */
export class Batches {
  private constructor(
    private readonly collection: Collection<Document>,
    private readonly session: ClientSession,
    private id: Long,
    /** The find's own batch. */
    readonly first: Buffer[],
  ) {}

  static async open(collection: Collection<Document>, find: FindCommand, signal?: AbortSignal): Promise<Batches> {
    const session = collection.db.client.startSession({ causalConsistency: false });
    // The collection's read concern, as the driver's find sends it.
    const readConcern = collection.readConcern ? { readConcern: { level: collection.readConcern.level } } : {};
    const run = () => command(collection, session, { find: collection.collectionName, ...find, ...readConcern }, signal);
    try {
      const reply = await run().catch((error: unknown) => {
        if (retryableRead(error) && collection.db.client.options.retryReads !== false && !signal?.aborted) return run();
        throw error;
      });
      return new Batches(collection, session, reply.cursor.id, reply.cursor.firstBatch ?? []);
    } catch (error) {
      await session.endSession().catch(() => undefined);
      throw error;
    }
  }

  /** The server holds no more: the batches so far were all there is. */
  get exhausted(): boolean {
    return this.id.isZero();
  }

  /** The next batch (up to `batchSize` documents, and the server's 16 MiB); none once exhausted. */
  async next(batchSize: number): Promise<Buffer[]> {
    if (this.exhausted) return [];
    const reply = await command(this.collection, this.session, { getMore: this.id, collection: this.collection.collectionName, batchSize });
    this.id = reply.cursor.id;
    return reply.cursor.nextBatch ?? [];
  }

  /** The cursor closed on the server if it is still open there (an abandoned read), and the session ended. */
  async close(): Promise<void> {
    const id = this.id;
    try {
      if (!id.isZero()) {
        this.id = Long.ZERO; // whatever happens, never killed twice
        await command(this.collection, this.session, { killCursors: this.collection.collectionName, cursors: [id] }).catch(() => undefined);
      }
    } finally {
      await this.session.endSession().catch(() => undefined);
    }
  }
}

/**
 * A cursor lives on the server that opened it, and the driver picks a server for each command: on the primary,
 * all three reach the same one (the driver's cursor keeps to its server, which a command cannot ask for; with
 * several mongos a stream longer than one batch fails: docs/service.md).
 */
function command(collection: Collection<Document>, session: ClientSession, body: Document, signal?: AbortSignal): Promise<CursorReply> {
  return collection.db.command(body, { ...REPLY, session, readPreference: ReadPreference.primary, signal }) as Promise<CursorReply>;
}
