import Router from '@koa/router';
import type { Context } from 'koa';
import { ObjectId } from 'mongodb';
import { createHash } from 'node:crypto';
import { readJsonBody, type BodyBudget } from '../body';
import { badRequest } from '../errors';
import { sendJsonArray } from '../jsonArrayStream';
import type { DataStore } from '../store/dataStore';
import { checkNumbers, validateInsertBody, type DocumentLimits } from '../validate';

export const MAX_PAGE_SIZE = 1000;

export interface DataRouterOptions {
  store: DataStore;
  bodyLimitBytes: number;
  bodyBudget: BodyBudget;
  documentLimits: DocumentLimits;
  pageMaxChars: number;
  streamStallTimeoutMs: number;
  streamMaxMs: number;
}

/** Printable ASCII, as the Idempotency-Key draft (and every client library) uses. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** POST /data stores one object or a batch; GET /data streams them back, or a page. Parses and answers; the store does the rest. */
export function dataRouter({ store, bodyLimitBytes, bodyBudget, documentLimits, pageMaxChars, streamStallTimeoutMs, streamMaxMs }: DataRouterOptions): Router {
  const router = new Router({ strict: true, sensitive: true });

  router.post('/data', async (ctx) => {
    const key = idempotencyKey(ctx);
    const { bytes, text } = await readJsonBody(ctx, bodyLimitBytes, bodyBudget);
    const body = validateInsertBody(parseJson(text), documentLimits);
    checkNumbers(text);
    const documents = Array.isArray(body) ? body : [body];
    const idempotency = key === undefined ? undefined : { key, fingerprint: createHash('sha256').update(bytes).digest('base64url') };
    const outcome = await store.insert(documents, { idempotency });
    if (outcome.replayed) ctx.set('Idempotent-Replayed', 'true');
    ctx.status = 201;
    ctx.body = Array.isArray(body)
      ? { status: 'Data inserted', count: outcome.ids.length, ids: outcome.ids.map(String) }
      : { status: 'Data inserted', id: String(outcome.ids[0]) };
  });

  router.get('/data', async (ctx) => {
    const query = parseListQuery(ctx.query);
    // Set on the response itself (Koa's setters look the type up, on every read): a page's body keeps them.
    ctx.res.setHeader('Cache-Control', 'no-store');
    ctx.res.setHeader('Content-Type', 'application/json; charset=utf-8');
    // HEAD: the headers a GET would have, without running its query (or opening a cursor).
    if (ctx.method === 'HEAD') return void (ctx.status = 200);

    // A reader that leaves while it waits for its turn (a cursor, a read slot) gives up its place.
    const gone = new AbortController();
    const leave = () => gone.abort();
    ctx.res.once('close', leave);
    try {
      if (query.limit === undefined) {
        // Everything, streamed as the client reads: memory stays flat whatever the
        // collection's size. Natural order, as the guide's app returned it.
        const source = await store.openStream(query.after, gone.signal);
        ctx.status = 200;
        ctx.respond = false; // written by sendJsonArray, not by Koa
        sendJsonArray(ctx.res, source, streamStallTimeoutMs, streamMaxMs, (error) => ctx.app.emit('error', error, ctx));
        return;
      }
      // One page in _id order, bounded by count and by size.
      const page = await store.readPage({ limit: query.limit, after: query.after, maxChars: pageMaxChars }, gone.signal);
      if (page.next) {
        const next = page.next.toHexString();
        ctx.set('X-Next-Cursor', next);
        ctx.set('Link', `</data?limit=${query.limit}&after=${next}>; rel="next"`);
      }
      ctx.body = page.json;
    } finally {
      // Not aborted when it ends: an abort builds an exception, for nobody.
      ctx.res.off('close', leave);
    }
  });

  return router;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw badRequest(`malformed JSON: ${(error as Error).message}`);
  }
}

function idempotencyKey(ctx: Context): string | undefined {
  // Present but empty (Node trims a whitespace-only value to ''): a key the client meant to send, refused.
  const raw = ctx.req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !IDEMPOTENCY_KEY.test(raw)) throw badRequest('Idempotency-Key must be 1 to 255 printable ASCII characters');
  return raw;
}

const OBJECT_ID = /^[0-9a-f]{24}$/i;

function parseListQuery(raw: Record<string, string | string[] | undefined>): { limit?: number; after?: ObjectId } {
  const query: { limit?: number; after?: ObjectId } = {};
  for (const [name, value = ''] of Object.entries(raw)) {
    if (Array.isArray(value)) throw badRequest(`query parameter "${name}" is given more than once`);
    if (name === 'limit' && /^\d{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= MAX_PAGE_SIZE) query.limit = Number(value);
    else if (name === 'limit') throw badRequest(`limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
    else if (name === 'after' && OBJECT_ID.test(value)) query.after = ObjectId.createFromHexString(value);
    else if (name === 'after') throw badRequest('after must be a cursor from a previous page (X-Next-Cursor header)');
    else throw badRequest(`unknown query parameter "${name}": use limit and after`);
  }
  return query;
}
