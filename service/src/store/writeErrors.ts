import {
  BSON,
  MongoBulkWriteError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoClientClosedError,
} from 'mongodb';
import { StoreError } from './storeError';

/** Server codes that mean "this document is not acceptable" (the caller's input, not the database's state). */
const REJECTION_CODES = new Set([2, 14, 22, 52, 55, 56, 57, 121, 10334, 17419, 16837]);

/** Server codes that mean the command was refused before it did anything (not primary, shutting down). */
const NOT_APPLIED_CODES = new Set([91, 189, 10107, 13435, 13436, 11600, 11602]);

/**
 * `insertMany` wraps every failure in a MongoBulkWriteError, a MongoServerError, even when no server said
 * anything: no server to select, a reply that never came. Such a wrapper has no write error and no write
 * concern error of its own, and keeps the driver's original error as `errorResponse` (mongodb 7.9).
 * Classified as the wrapper, a bulk POST with the database away was a 500, and one whose reply was lost
 * a 500 too, instead of a 503 and a 504.
 */
export function wrappedDriverError(error: unknown): Error | undefined {
  if (!(error instanceof MongoBulkWriteError)) return undefined;
  const writeErrors = error.writeErrors;
  const count = Array.isArray(writeErrors) ? writeErrors.length : writeErrors ? 1 : 0;
  if (count > 0 || error.writeConcernError) return undefined;
  const original = (error as { errorResponse?: unknown }).errorResponse;
  return original instanceof Error ? original : undefined;
}

/** A duplicate _id, and nothing else: a wrapper with no write errors at all (a lost reply, no server) is not one. */
export const isDuplicateKey = (error: unknown): boolean => {
  if (!(error instanceof MongoServerError)) return false;
  if (Number(error.code) === 11000) return true;
  const writeErrors = (error as { writeErrors?: { code?: number } | Array<{ code?: number }> }).writeErrors;
  const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
  return list.length > 0 && list.every((e) => e.code === 11000);
};

/** True when the error proves the write never reached the server (no server, no connection, no slot in the pool). */
function neverSent(error: unknown): boolean {
  if (
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoClientClosedError
  ) {
    return true;
  }
  // A pool that was cleared or closed, or no connection free in time: checked out before sending.
  const name = (error as { name?: string } | null)?.name ?? '';
  if (['PoolClearedError', 'PoolClearedOnNetworkError', 'PoolClosedError', 'WaitQueueTimeoutError', 'MongoWaitQueueTimeoutError', 'MongoPoolClearedError', 'MongoPoolClosedError'].includes(name)) return true;
  // Could not even connect: nothing was sent.
  if (error instanceof MongoNetworkError && (error as { beforeHandshake?: boolean }).beforeHandshake === true) return true;
  if (error instanceof MongoServerError && NOT_APPLIED_CODES.has(Number(error.code))) return true;
  // Node's own socket errors that happen before any byte leaves: writing to a socket the peer already
  // ended ("This socket has been ended by the other party", EPIPE), or no route/name/listener at all.
  // The driver wraps the socket's error when connecting (`cause`), so look down the chain.
  for (let cause: unknown = error, depth = 0; cause != null && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && UNSENT_SOCKET_CODES.has(code)) return true;
  }
  return false;
}

const UNSENT_SOCKET_CODES = new Set(['EPIPE', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);


export const OUTCOME_UNKNOWN =
  'the database did not confirm the write in time: it may or may not have been stored. Retry with the same Idempotency-Key to be safe';

/**
 * Turns a failed write into what its caller must be told: the document was
 * refused (StoreError 'rejected'), the database is away and nothing was
 * written (the driver's error, a 503), or the write was sent and we cannot
 * know whether it was applied (StoreError 'outcome-unknown', never "try again").
 */
export function classifyWriteError(error: unknown): unknown {
  if (error instanceof StoreError) return error;
  const behind = wrappedDriverError(error);
  if (behind) {
    // The driver splits a large insertMany into several commands: when a later one fails, even unsent,
    // the earlier ones are stored, and "try again" would store them twice.
    if ((error as MongoBulkWriteError).insertedCount > 0) return new StoreError('outcome-unknown', OUTCOME_UNKNOWN, { cause: error });
    return classifyWriteError(behind);
  }
  // The encoder's own words name its library and version, which tell the client nothing (validation
  // refuses, with the field's path, everything it is known to refuse).
  if (BSON.BSONError.isBSONError(error)) return new StoreError('rejected', 'a document cannot be stored: it cannot be encoded as BSON', { cause: error });
  if (error instanceof MongoServerError && REJECTION_CODES.has(Number(error.code))) {
    return new StoreError('rejected', `the database refused a document: ${error.errmsg ?? error.message}`, { cause: error });
  }
  if (neverSent(error)) return error;
  if (error instanceof MongoServerError) return error;
  return new StoreError('outcome-unknown', OUTCOME_UNKNOWN, { cause: error });
}
