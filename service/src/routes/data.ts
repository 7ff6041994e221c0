import Router from '@koa/router';
import { Readable } from 'node:stream';
import { ObjectId, type Document } from 'mongodb';
import type { Database } from '../db';
import { timed, type Metrics } from '../metrics';
import { readJsonBody } from '../body';
import { badRequest } from '../errors';
import { validateInsertBody } from '../validate';

export const MAX_PAGE_SIZE = 1000;
/** Streamed output is sent in pieces of about this size: fewer writes, flat memory. */
const CHUNK_BYTES = 16 * 1024;
const CURSOR_BATCH = 500;

export interface DataRouterOptions {
  db: Pick<Database, 'collection'>;
  bodyLimitBytes: number;
  metrics: Metrics;
}

interface PageQuery {
  limit?: number;
  after?: ObjectId;
}

/** POST /data stores one object or a batch; GET /data streams them back, optionally a page at a time. */
export function dataRouter({ db, bodyLimitBytes, metrics }: DataRouterOptions): Router {
  const router = new Router();

  router.post('/data', async (ctx) => {
    const documents = validateInsertBody(await readJsonBody(ctx, bodyLimitBytes));
    const collection = db.collection();
    if (Array.isArray(documents)) {
      // One ordered bulk insert: validation above already refused the batch if any element was bad.
      const result = await timed(metrics, 'insertMany', () => collection.insertMany(documents));
      ctx.status = 201;
      ctx.body = {
        status: 'Data inserted',
        count: result.insertedCount,
        ids: Object.values(result.insertedIds).map(String),
      };
    } else {
      const result = await timed(metrics, 'insertOne', () => collection.insertOne(documents));
      ctx.status = 201;
      ctx.body = { status: 'Data inserted', id: String(result.insertedId) };
    }
  });

  router.get('/data', async (ctx) => {
    const query = parsePageQuery(ctx.query);
    const collection = db.collection();
    const filter: Document = query.after ? { _id: { $gt: query.after } } : {};
    ctx.set('Cache-Control', 'no-store');

    if (query.limit === undefined) {
      // Everything: streamed from the cursor a batch at a time, so memory stays
      // flat whatever the collection's size. Natural order, as the guide's app
      // returned it: no sort, so the first bytes leave at once on any backend
      // (pages below are in _id order, which their cursors need).
      const cursor = collection.find(filter, { projection: { _id: 0 }, batchSize: CURSOR_BATCH });
      if (query.after) cursor.sort({ _id: 1 });
      // Fetch the first batch before committing to 200, so an unreachable
      // database is still a clean 503 rather than a broken stream.
      await timed(metrics, 'find', () => cursor.hasNext());
      ctx.type = 'application/json; charset=utf-8';
      ctx.body = Readable.from(jsonArray(cursor, (doc) => doc, () => cursor.close()), { objectMode: false });
      return;
    }

    // One page: one query for limit+1 documents in a single batch. The extra one
    // only tells whether there is a next page; the page is bounded by limit (≤ 1000).
    const limit = query.limit;
    const page = await timed(metrics, 'findPage', () =>
      collection
        .find(filter, { batchSize: limit + 1 })
        .sort({ _id: 1 })
        .limit(limit + 1)
        .toArray(),
    );
    if (page.length > query.limit) {
      page.length = query.limit;
      const next = (page[page.length - 1]._id as ObjectId).toHexString();
      ctx.set('X-Next-Cursor', next);
      ctx.set('Link', `<${ctx.path}?limit=${query.limit}&after=${next}>; rel="next"`);
    }
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = Readable.from(jsonArray(page, withoutId), { objectMode: false });
  });

  return router;
}

const withoutId = ({ _id, ...rest }: Document): Document => rest;

/**
 * Serialises documents as one JSON array, a chunk at a time; `done` runs when
 * the stream ends or the client goes away (closing the cursor).
 */
async function* jsonArray(
  docs: AsyncIterable<Document> | Iterable<Document>,
  shape: (doc: Document) => Document,
  done: () => Promise<void> = async () => undefined,
): AsyncGenerator<string> {
  let chunk = '[';
  let first = true;
  try {
    for await (const doc of docs) {
      chunk += (first ? '' : ',') + JSON.stringify(shape(doc));
      first = false;
      if (chunk.length >= CHUNK_BYTES) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk + ']';
  } finally {
    await done();
  }
}

const OBJECT_ID = /^[0-9a-f]{24}$/i;

function parsePageQuery(raw: Record<string, string | string[] | undefined>): PageQuery {
  const query: PageQuery = {};
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) throw badRequest(`query parameter "${name}" is given more than once`);
    switch (name) {
      case 'limit':
        if (value === undefined || !/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > MAX_PAGE_SIZE) {
          throw badRequest(`limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
        }
        query.limit = Number(value);
        break;
      case 'after':
        if (value === undefined || !OBJECT_ID.test(value)) {
          throw badRequest('after must be a cursor from a previous page (X-Next-Cursor header)');
        }
        query.after = ObjectId.createFromHexString(value);
        break;
      default:
        throw badRequest(`unknown query parameter "${name}": use limit and after`);
    }
  }
  return query;
}
