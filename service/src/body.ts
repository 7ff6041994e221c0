import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { HttpError, badRequest } from './errors';

/**
 * The bytes of request bodies this process holds at once (BODY_BUDGET_BYTES), from the first byte read
 * until the answer is sent: the bound on what clients can make it hold, whoever and however many they are.
 */
export interface BodyBudget {
  readonly limitBytes: number;
  held: number;
}

/** `application/json`, alone or with a UTF-8 charset: what nearly every client sends, checked without parsing. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-?8"?\s*)?$/i;

/**
 * Reads a JSON request body as text, with a hard size limit.
 *
 * Written out rather than taken from a body-parser because each failure must
 * map to its own status: no body 400, wrong type or encoding 415, too big 413,
 * cut short 400, not UTF-8 400. The bytes as sent (not the text) are what an
 * Idempotency-Key fingerprints.
 */
export async function readJsonBody(ctx: Context, limitBytes: number, budget: BodyBudget): Promise<{ bytes: Buffer; text: string }> {
  const headers = ctx.req.headers;
  const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (headers['transfer-encoding'] === undefined && !declared) {
    throw badRequest('request body is empty: send a JSON object or an array of objects');
  }
  const type = headers['content-type'];
  if (type === undefined || !PLAIN_JSON.test(type)) checkContentType(ctx);
  // Compressed bodies are not decoded: storing the compressed bytes as if plain would be wrong,
  // and the size limit must apply to what is stored.
  const encoding = headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    throw new HttpError(415, `Content-Encoding "${encoding}" is not supported: send the body uncompressed`, { 'Accept-Encoding': 'identity' });
  }

  // Counted against the budget before it is read (its declared length) or as it arrives (chunked), and
  // given back once the answer is sent: past the budget, the request is shed, never the process.
  let held = 0;
  ctx.res.once('close', () => (budget.held -= held));
  const hold = (bytes: number): boolean => {
    if (budget.held + bytes > budget.limitBytes) return false;
    budget.held += bytes;
    held += bytes;
    return true;
  };
  // The connection is closed after the answer rather than the rest of the body read only to be dropped.
  const shed = () => new HttpError(503, `too many request bodies in progress (BODY_BUDGET_BYTES=${budget.limitBytes}); try again shortly`, { 'Retry-After': '1', Connection: 'close' }, true);
  if (declared !== undefined && declared <= limitBytes && !hold(declared)) throw shed();
  const bytes = await readAll(ctx.req, declared, limitBytes, declared === undefined ? hold : () => true, shed);
  // Decoded, invalid UTF-8 would become U+FFFD and be stored so: refused instead. A byte order mark is dropped.
  if (!isUtf8(bytes)) throw badRequest('request body is not valid UTF-8');
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (!/\S/.test(text)) {
    throw badRequest('request body is empty: send a JSON object or an array of objects');
  }
  return { bytes, text };
}

/** The slow path: any other Content-Type, parsed, for a clear 415. */
function checkContentType(ctx: Context): void {
  if (!ctx.request.is('application/json', '+json')) {
    throw new HttpError(415, 'Content-Type must be application/json');
  }
  const charset = ctx.request.charset.toLowerCase();
  if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HttpError(415, `unsupported charset "${ctx.request.charset}": send UTF-8`);
  }
}

/**
 * The body's bytes. Refuses a declared length over the limit before reading anything, and stops
 * reading (413) as soon as a chunked body passes it (503 when it passes the budget: `hold`); a client
 * that hangs up before the end gets 400.
 */
function readAll(req: IncomingMessage, declared: number | undefined, limitBytes: number, hold: (bytes: number) => boolean, shed: () => Error): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `request body exceeds the limit of ${limitBytes} bytes (limit BODY_LIMIT_BYTES)`);
  if (declared !== undefined && declared > limitBytes) return Promise.reject(tooLarge());
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (error?: Error) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onCutShort);
      req.off('close', onCutShort);
      if (error === undefined) {
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
        return;
      }
      // Nothing more is read; the connection closes once the answer is sent.
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limitBytes) finish(tooLarge());
      else if (!hold(chunk.length)) finish(shed());
      else chunks.push(chunk);
    };
    const onEnd = () => finish();
    // Closed or failed before 'end': the client went away, or sent less than it declared.
    const onCutShort = () => finish(badRequest('request body was cut short or does not match Content-Length'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onCutShort);
    req.on('close', onCutShort);
  });
}
