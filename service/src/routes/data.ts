import Router from '@koa/router';
import { Readable } from 'node:stream';
import { ObjectId, type Document, type FindCursor } from 'mongodb';
import type { Database } from '../db';
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
}

interface PageQuery {
  limit?: number;
  after?: ObjectId;
}

/** POST /data stores one object or a batch; GET /data streams them back, optionally a page at a time. */
export function dataRouter({ db, bodyLimitBytes }: DataRouterOptions): Router {
  const router = new Router();

  router.post('/data', async (ctx) => {
    const documents = validateInsertBody(await readJsonBody(ctx, bodyLimitBytes));
    const collection = db.collection();
    if (Array.isArray(documents)) {
      // One ordered bulk insert: validation above already refused the batch if any element was bad.
      const result = await collection.insertMany(documents);
      ctx.status = 201;
      ctx.body = {
        status: 'Data inserted',
        count: result.insertedCount,
        ids: Object.values(result.insertedIds).map(String),
      };
    } else {
      const result = await collection.insertOne(documents);
      ctx.status = 201;
      ctx.body = { status: 'Data inserted', id: String(result.insertedId) };
    }
  });

  router.get('/data', async (ctx) => {
    const query = parsePageQuery(ctx.query);
    const collection = db.collection();
    const afterFilter: Document = query.after ? { _id: { $gt: query.after } } : {};

    let filter = afterFilter;
    if (query.limit !== undefined) {
      // Find where this page ends (an index-only walk of at most limit+1 ids) so that
      // the next cursor can go in the headers before the body starts streaming.
      const edge = await collection
        .find(afterFilter, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .skip(query.limit - 1)
        .limit(2)
        .toArray();
      if (edge.length > 0) {
        const last = edge[0]._id as ObjectId;
        filter = { _id: { ...(query.after ? { $gt: query.after } : {}), $lte: last } };
        if (edge.length === 2) {
          const next = last.toHexString();
          const url = `${ctx.path}?limit=${query.limit}&after=${next}`;
          ctx.set('X-Next-Cursor', next);
          ctx.set('Link', `<${url}>; rel="next"`);
        }
      }
    }

    const cursor = collection
      .find(filter, { projection: { _id: 0 }, batchSize: CURSOR_BATCH })
      .sort({ _id: 1 });
    if (query.limit !== undefined) cursor.limit(query.limit);
    // Fetch the first batch before committing to 200, so an unreachable
    // database is still a clean 503 rather than a broken stream.
    await cursor.hasNext();

    ctx.status = 200;
    ctx.type = 'application/json; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = Readable.from(jsonArray(cursor), { objectMode: false });
  });

  return router;
}

/** Serialises a cursor as one JSON array, a chunk at a time, closing the cursor when done or aborted. */
async function* jsonArray(cursor: FindCursor<Document>): AsyncGenerator<string> {
  let chunk = '[';
  let first = true;
  try {
    for await (const doc of cursor) {
      chunk += (first ? '' : ',') + JSON.stringify(doc);
      first = false;
      if (chunk.length >= CHUNK_BYTES) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk + ']';
  } finally {
    await cursor.close();
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
