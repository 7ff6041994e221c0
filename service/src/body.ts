import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { HttpError, badRequest } from './errors';

/**
 * Reads and parses a JSON request body with a hard size limit.
 *
 * Written out rather than taken from a body-parser because each failure must
 * map to its own status: no body 400, wrong type 415, too big 413, bad JSON 400.
 */
export async function readJsonBody(ctx: Context, limitBytes: number): Promise<unknown> {
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

  let text: string;
  try {
    text = await getRawBody(ctx.req, { length, limit: limitBytes, encoding: 'utf8' });
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 413) throw new HttpError(413, `request body exceeds the limit of ${limitBytes} bytes`);
    if (status === 400) throw badRequest('request body was cut short or does not match Content-Length');
    throw error;
  }
  if (text.trim() === '') {
    throw badRequest('request body is empty: send a JSON object or an array of objects');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw badRequest(`malformed JSON: ${(error as Error).message}`);
  }
}
