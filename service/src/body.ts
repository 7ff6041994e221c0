import { isUtf8 } from 'node:buffer';
import type { Context } from 'koa';
import { HttpError, badRequest } from './errors';

/**
 * The bytes of request bodies this process holds at once (BODY_BUDGET_BYTES), from the first byte read
 * until the answer is sent: the bound on what clients can make it hold, whoever and however many they are.
 */
export type BodyBudget = { readonly limitBytes: number; held: number };

/** `application/json`, alone or with a UTF-8 charset: what nearly every client sends, checked without parsing. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-?8"?\s*)?$/i;
const empty = () => badRequest('request body is empty: send a JSON object or an array of objects');

/**
 * Reads a JSON request body as text, with a hard size limit. Written out rather than taken from a
 * body-parser because each failure must map to its own status: no body 400, wrong type or encoding 415,
 * too big 413, cut short 400, not UTF-8 400, over the budget 503. The bytes as sent (not the text) are
 * what an Idempotency-Key fingerprints.
 */
export async function readJsonBody(ctx: Context, limitBytes: number, budget: BodyBudget): Promise<{ bytes: Buffer; text: string }> {
  const headers = ctx.req.headers;
  const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (headers['transfer-encoding'] === undefined && !declared) throw empty();
  const type = headers['content-type'];
  // Any other Content-Type takes the slow path: parsed, for a clear 415.
  if (type === undefined || !PLAIN_JSON.test(type)) {
    if (!ctx.request.is('application/json', '+json')) throw new HttpError(415, 'Content-Type must be application/json');
    const charset = ctx.request.charset.toLowerCase();
    if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') throw new HttpError(415, `unsupported charset "${ctx.request.charset}": send UTF-8`);
  }
  // Compressed bodies are not decoded: storing the compressed bytes as if plain would be wrong, and the
  // size limit must apply to what is stored.
  const encoding = headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    throw new HttpError(415, `Content-Encoding "${encoding}" is not supported: send the body uncompressed`, { 'Accept-Encoding': 'identity' });
  }
  const tooLarge = () => new HttpError(413, `request body exceeds the limit of ${limitBytes} bytes (limit BODY_LIMIT_BYTES)`);
  if (declared !== undefined && declared > limitBytes) throw tooLarge();

  // Counted against the budget before it is read (its declared length) or as it arrives (chunked), and
  // given back once the answer is sent: past the budget, the request is shed, never the process.
  // The connection is closed after the answer rather than the rest of the body read only to be dropped.
  let held = 0;
  ctx.res.once('close', () => (budget.held -= held));
  const hold = (bytes: number): boolean => {
    if (budget.held + bytes > budget.limitBytes) return false;
    budget.held += bytes;
    held += bytes;
    return true;
  };
  const shed = () => new HttpError(503, `too many request bodies in progress (BODY_BUDGET_BYTES=${budget.limitBytes}); try again shortly`, { 'Retry-After': '1', Connection: 'close' }, true);
  if (declared !== undefined && !hold(declared)) throw shed();

  const req = ctx.req;
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (error?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onCutShort).off('close', onCutShort);
      if (error === undefined) return resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
      // Nothing more is read; the connection closes once the answer is sent.
      req.pause();
      reject(error);
    };
    // Stops reading as soon as a chunked body passes the limit (413) or the budget (503).
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limitBytes) finish(tooLarge());
      else if (declared === undefined && !hold(chunk.length)) finish(shed());
      else chunks.push(chunk);
    };
    const onEnd = () => finish();
    // Closed or failed before 'end': the client went away, or sent less than it declared.
    const onCutShort = () => finish(badRequest('request body was cut short or does not match Content-Length'));
    req.on('data', onData).on('end', onEnd).on('error', onCutShort).on('close', onCutShort);
  });
  // Decoded, invalid UTF-8 would become U+FFFD and be stored so: refused instead. A byte order mark is dropped.
  if (!isUtf8(bytes)) throw badRequest('request body is not valid UTF-8');
  const text = bytes.toString('utf8');
  if (!/\S/.test(text)) throw empty();
  return { bytes, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
}
