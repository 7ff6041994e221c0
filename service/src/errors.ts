import {
  BSON,
  MongoBulkWriteError,
  MongoClientClosedError,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
} from 'mongodb';

/** An error whose message is meant for the client, with its HTTP status. */
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

const OUTCOME_UNKNOWN = 'the database did not confirm the write in time: it may or may not have been stored. Retry with the same Idempotency-Key to be safe';
/** A write that was sent and not answered: never 503 "try again", which would invite a second copy. */
export const outcomeUnknown = (cause?: unknown) => new HttpError(504, OUTCOME_UNKNOWN, {}, false, { cause });
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

/** No answer in time: the server's time limit, the socket timeout, or our own deadline. */
function isTimeout(error: unknown): boolean {
  if (error instanceof MongoNetworkTimeoutError || error instanceof MongoOperationTimeoutError) return true;
  if (error instanceof MongoServerError && code(error) === 50) return true;
  return error instanceof Error && error.name === 'TimeoutError';
}

/**
 * Any thrown value as the answer its request gets (a read's, or one the store already settled). The
 * service raises HttpError (never ctx.throw); the driver's errors are translated here.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (isTimeout(error)) {
    return new HttpError(504, 'the database did not answer in time (the query timed out), try again shortly', { 'Retry-After': '2' }, true);
  }
  // A read may always be tried again: a connection lost mid-way is as good as never sent.
  const socketCode = (error as { code?: unknown } | null)?.code;
  if (neverSent(error) || error instanceof MongoNetworkError || (typeof socketCode === 'string' && /^E[A-Z]+$/.test(socketCode)) || (error as Error | null)?.name === 'AbortError') {
    return unavailable();
  }
  if (error instanceof MongoServerError && UNKNOWN_OUTCOME_CODES.has(code(error))) return unavailable(); // the server lost track: a read may go again
  // Koa and its middleware attach `status`/`expose` to the errors they raise (e.g. 400).
  const maybe = error as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof maybe?.status === 'number' && maybe.status >= 400 && maybe.status < 500 && maybe.expose === true) {
    return new HttpError(maybe.status, String(maybe.message));
  }
  return new HttpError(500, 'internal server error');
}

/**
 * `insertMany` wraps every failure in a MongoBulkWriteError, even when no server said anything: such a
 * wrapper has no write error and no write concern error of its own, and keeps the driver's original error
 * as `errorResponse` (mongodb 7.9).
 */
function wrappedDriverError(error: unknown): Error | undefined {
  if (!(error instanceof MongoBulkWriteError) || writeErrorsOf(error).length > 0 || error.writeConcernError) return undefined;
  const original = (error as { errorResponse?: unknown }).errorResponse;
  return original instanceof Error ? original : undefined;
}

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
  const behind = wrappedDriverError(error);
  if (behind) {
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
