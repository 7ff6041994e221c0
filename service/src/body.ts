import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { HttpError, badRequest } from './errors';

/**
 * Reads a JSON request body as text, with a hard size limit.
 *
 * Written out rather than taken from a body-parser because each failure must
 * map to its own status: no body 400, wrong type or encoding 415, too big 413.
 * The text (not only the parsed value) is what an Idempotency-Key fingerprints.
 */
export async function readJsonBody(ctx: Context, limitBytes: number): Promise<string> {
  const length = ctx.request.length;
  const chunked = ctx.get('Transfer-Encoding') !== '';
  if (!chunked && (length === undefined || length === 0)) {
    throw badRequest('request body is empty: send a JSON object or an array of objects');
  }
  if (!ctx.request.is('application/json', '+json')) {
    throw new HttpError(415, 'Content-Type must be application/json');
  }
  const charset = ctx.request.charset;
  if (charset !== '' && charset.toLowerCase() !== 'utf-8' && charset.toLowerCase() !== 'utf8') {
    throw new HttpError(415, `unsupported charset "${charset}": send UTF-8`);
  }
  // Compressed bodies are not decoded: storing the compressed bytes as if plain would be wrong,
  // and the size limit must apply to what is stored.
  const encoding = ctx.get('Content-Encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw new HttpError(415, `Content-Encoding "${encoding}" is not supported: send the body uncompressed`, { 'Accept-Encoding': 'identity' });
  }

  let text: string;
  try {
    text = await getRawBody(ctx.req, { length, limit: limitBytes, encoding: 'utf8' });
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 413) throw new HttpError(413, `request body exceeds the limit of ${limitBytes} bytes (limit BODY_LIMIT_BYTES)`);
    if (status === 400) throw badRequest('request body was cut short or does not match Content-Length');
    throw error;
  }
  if (!/\S/.test(text)) {
    throw badRequest('request body is empty: send a JSON object or an array of objects');
  }
  return text;
}
