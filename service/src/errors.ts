import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { Middleware } from 'koa';
import { BSON, MongoBulkWriteError, MongoClientClosedError, MongoNetworkError, MongoNetworkTimeoutError, MongoNotConnectedError } from 'mongodb';
import { MongoOperationTimeoutError, MongoServerError, MongoServerSelectionError, MongoTopologyClosedError, MongoWriteConcernError } from 'mongodb';
import type { Logger } from './logger';

/**
 * Every failure becomes its answer here: the one table from the database's and the driver's errors to
 * statuses, the middleware that writes every error as `{"error": "..."}`, and the answers Node's HTTP layer
 * gives before the app sees a request, in the same shape. HttpError: a message meant for the client, with its status.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** A 5xx that is the load or the database's pace, not a fault here: logged as a warning, without a stack. */
    readonly expected = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, message);
/** Too much at once here (reads, bodies): try again in a second. */
export const busy = (message: string): HttpError => new HttpError(503, message, { 'Retry-After': '1' }, true);
/** A write that was sent and not answered: never 503 "try again", which would invite a second copy. */
export const outcomeUnknown = (cause?: unknown): HttpError =>
  new HttpError(504, 'the database did not confirm the write in time: it may or may not have been stored. Retry with the same Idempotency-Key to be safe', {}, false, { cause });
const unavailable = (cause?: unknown) => new HttpError(503, 'database unavailable, try again shortly', { 'Retry-After': '2' }, false, { cause });

/**
 * The one table of what the database's and the driver's errors mean. Server codes: the command did nothing
 * (not primary, shutting down, interrupted, not authorised); the server gave up or lost track, so a write
 * may have been applied (time limits, network, write concern). Any other code a server answers a write
 * with is a refusal of the documents, known here or not.
 */
const NOT_APPLIED_CODES = new Set([13, 18, 91, 189, 10107, 13435, 13436, 11600, 11602]);
const UNKNOWN_OUTCOME_CODES = new Set([6, 7, 50, 64, 89, 262, 9001]);
/** Driver errors raised while checking a connection out of the pool: nothing was sent. */
const POOL_ERRORS = /Pool(Cleared|Closed)|WaitQueueTimeout/;
/** Node's socket errors that happen before any byte leaves (the driver wraps them when connecting: `cause`). */
const UNSENT_SOCKET_CODES = new Set(['EPIPE', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

const code = (error: unknown): number => Number((error as { code?: unknown } | null)?.code);

/** True when the error proves the operation never reached the server (no server, no connection, no slot in the pool). */
function neverSent(error: unknown): boolean {
  if (
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoClientClosedError ||
    POOL_ERRORS.test((error as { name?: string } | null)?.name ?? '') ||
    // Internal to the driver (set from its public MongoNetworkErrorOptions): a connection that timed out in its
    // handshake carried nothing, so the write is a 503, not a 504. honest-writes.test fails if the driver drops it.
    (error instanceof MongoNetworkError && (error as { beforeHandshake?: boolean }).beforeHandshake === true) ||
    (error instanceof MongoServerError && NOT_APPLIED_CODES.has(code(error)))
  ) {
    return true;
  }
  for (let cause: unknown = error, depth = 0; cause != null && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    const socketCode = (cause as { code?: unknown }).code;
    if (typeof socketCode === 'string' && UNSENT_SOCKET_CODES.has(socketCode)) return true;
  }
  return false;
}

/** Any thrown value as the answer its request gets (a read's, or one the store already settled). */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  // No answer in time: the server's time limit, the socket timeout, or our own deadline.
  if (error instanceof MongoNetworkTimeoutError || error instanceof MongoOperationTimeoutError || (error instanceof MongoServerError && code(error) === 50) || (error instanceof Error && error.name === 'TimeoutError')) {
    return new HttpError(504, 'the database did not answer in time (the query timed out), try again shortly', { 'Retry-After': '2' }, true);
  }
  // A read may always be tried again: a connection lost mid-way (or a server that lost track) is as good as never sent.
  const socketCode = (error as { code?: unknown } | null)?.code;
  if (
    neverSent(error) ||
    error instanceof MongoNetworkError ||
    (typeof socketCode === 'string' && /^E[A-Z]+$/.test(socketCode)) ||
    (error as Error | null)?.name === 'AbortError' ||
    (error instanceof MongoServerError && UNKNOWN_OUTCOME_CODES.has(code(error)))
  ) {
    return unavailable();
  }
  // Koa and its middleware attach `status`/`expose` to the errors they raise (e.g. 400).
  const maybe = error as { status?: unknown; expose?: unknown; message?: unknown } | null;
  if (typeof maybe?.status === 'number' && maybe.status >= 400 && maybe.status < 500 && maybe.expose === true) return new HttpError(maybe.status, String(maybe.message));
  return new HttpError(500, 'internal server error');
}

/** A read worth one more try, as the driver's retryable reads decide (mongodb 7.9 error.ts isRetryableReadError): a
 * connection lost, a server shutting down or no longer primary. */
const RETRYABLE_READ_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
export const retryableRead = (error: unknown): boolean => error instanceof MongoNetworkError || (error instanceof MongoServerError && RETRYABLE_READ_CODES.has(code(error)));

/** A bulk error's own write errors, each about one document (by index). */
export const writeErrorsOf = (error: unknown): Array<{ index: number; code?: number; errmsg?: string }> => {
  const writeErrors = (error as { writeErrors?: unknown }).writeErrors as { index: number } | Array<{ index: number }> | undefined;
  return Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
};

/** A duplicate _id, and nothing else: a wrapper with no write errors at all (a lost reply, no server) is not one. */
export const isDuplicateKey = (error: unknown): boolean =>
  error instanceof MongoServerError && (code(error) === 11000 || (writeErrorsOf(error).length > 0 && writeErrorsOf(error).every((e) => e.code === 11000)));

/**
 * A failed write as its request must be told, from the error alone: 503 when it provably never left, 504
 * when it was sent and may have been applied, 400 naming the reason when the database refused it (for any
 * reason: a code no table knows is a refusal too). A refusal of several documents at once says nothing
 * about which were stored: the store settles those document by document.
 */
export function writeError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  // `insertMany` wraps every failure in a MongoBulkWriteError, even when no server said anything: such a
  // wrapper has no write error of its own and keeps the driver's original error as `errorResponse`.
  const behind: unknown = error instanceof MongoBulkWriteError && writeErrorsOf(error).length === 0 && !error.writeConcernError ? error.errorResponse : undefined;
  if (behind instanceof Error) {
    // The driver splits a large insertMany into several commands: when a later one fails, even unsent,
    // the earlier ones are stored, and "try again" would store them twice.
    return (error as MongoBulkWriteError).insertedCount > 0 ? outcomeUnknown(error) : writeError(behind);
  }
  // The encoder's own words name its library and version, which tell the client nothing.
  if (BSON.BSONError.isBSONError(error)) return badRequest('a document cannot be stored: it cannot be encoded as BSON');
  if (neverSent(error)) return unavailable(error);
  if (error instanceof MongoServerError && !UNKNOWN_OUTCOME_CODES.has(code(error)) && !(error instanceof MongoWriteConcernError) && !error.errorLabels.includes('RetryableWriteError')) {
    return badRequest(`the database refused a document: ${error.errmsg ?? error.message}`);
  }
  return outcomeUnknown(error);
}

/** Every error, whoever threw it, leaves as `{"error": "..."}`; a 5xx's details go to the log (with the request id), never to the client. */
export function errorHandler(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      // Statuses set without a body (no route, wrong method) get their JSON error here.
      if (ctx.status >= 400 && ctx.body == null) {
        const { status, method, path } = ctx;
        const known: Record<number, string> = { 404: `no route for ${method} ${path}`, 405: `method ${method} is not allowed on ${path}; allowed: ${ctx.response.get('Allow')}`, 501: `method ${method} is not implemented` };
        throw new HttpError(status, known[status] ?? `request failed with status ${status}`);
      }
    } catch (error) {
      const answer = toHttpError(error);
      const requestId = ctx.state.requestId as string | undefined;
      const log = requestId === undefined ? logger : logger.child({ requestId });
      // Our failures are logged with their cause; a method we do not implement (501) is the client's doing.
      if (answer.expected) log.warn({ status: answer.status, reason: answer.message }, 'request not served');
      else if (answer.status >= 500 && answer.status !== 501) log.error({ err: error }, 'request failed');
      // Headers set by inner middleware (e.g. CORS) ride on the error; keep them.
      ctx.set({ ...(error as { headers?: Record<string, string> } | null)?.headers, ...answer.headers });
      ctx.status = answer.status;
      ctx.body = { error: answer.message };
    }
  };
}

const PARSER_ERRORS: Record<string, { status: number; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive in time (REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS)' },
  HPE_INVALID_METHOD: { status: 400, message: 'malformed request: unknown HTTP method' },
};

/** A JSON error with a request id and nosniff, as every answer has, for one written outside the app; the connection closes after it. */
function outsideAnswer(status: number, message: string, extra: Record<string, string> = {}) {
  const body = JSON.stringify({ error: message });
  const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), 'X-Request-Id': randomUUID(), 'X-Content-Type-Options': 'nosniff', ...extra, Connection: 'close' };
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return { headers, body, raw: `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n${head}\r\n${body}` };
}

/**
 * What Node's HTTP layer answers before the app sees a request: malformed requests, oversized headers and
 * timeouts (400/431/408), CONNECT (405), `Expect: 100-continue` with a body over the limit (413, before the
 * client sends it) and any other Expect (417, where Node would answer bare).
 */
export function answerOutsideTheApp(server: http.Server, logger: Logger, bodyLimitBytes: number, answering: (socket: net.Socket) => boolean): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => {
    // Nothing can be written: the client is gone, or a response has begun on this connection.
    if (error.code === 'ECONNRESET' || !socket.writable || answering(socket)) return void socket.destroy();
    const { status, message } = PARSER_ERRORS[error.code ?? ''] ?? { status: 400, message: `malformed request (${error.code ?? 'parse error'})` };
    const answer = outsideAnswer(status, message);
    // A client's mistake, not ours: one line without a stack.
    logger.info({ requestId: answer.headers['X-Request-Id'], status, code: error.code }, 'request refused by the HTTP parser');
    socket.end(answer.raw);
  });
  server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.on('error', () => undefined);
    socket.end(outsideAnswer(405, 'method CONNECT is not allowed: this is not a proxy', { Allow: 'GET, HEAD, POST, OPTIONS' }).raw);
  });
  const answer = (res: http.ServerResponse, status: number, message: string) => {
    const { headers, body } = outsideAnswer(status, message);
    res.shouldKeepAlive = false;
    res.writeHead(status, headers).end(body);
  };
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (Number(req.headers['content-length']) > bodyLimitBytes) {
      return answer(res, 413, `request body exceeds the limit of ${bodyLimitBytes} bytes (limit BODY_LIMIT_BYTES); not sent`);
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => answer(res, 417, `Expect "${String(req.headers.expect)}" is not supported (only 100-continue)`));
}
