import {
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoServerError,
} from 'mongodb';
import { StoreError, type StoreErrorKind } from './store/storeError';

/** An error whose message is meant for the client, with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** A 5xx that is the load or the database's pace, not a fault here: logged as a warning, without a stack. */
    readonly expected = false,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, message);

const SOCKET_ERRORS = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * True when the error means "the database cannot be reached right now": the
 * client should retry later (503), and nothing about it is the caller's fault.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNetworkError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoOperationTimeoutError
  ) {
    return true;
  }
  // The driver sometimes lets a raw socket error through when the server
  // vanishes mid-write ("This socket has been ended by the other party").
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && SOCKET_ERRORS.has(code)) {
    return true;
  }
  // An operation we abandoned after our own deadline (AbortSignal.timeout).
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return true;
  }
  // Server-side interruptions (shutdown in progress, not primary, exceeded time limit).
  if (error instanceof MongoServerError) {
    return [50, 89, 91, 189, 11600, 11602, 10107, 13435, 13436].includes(Number(error.code));
  }
  return false;
}

/**
 * True when the database did not answer in time: the server gave up on the query (maxTimeMS, code 50), no
 * reply came within the socket timeout, or our own deadline passed. Not an outage: the database is there,
 * and slow (a page FerretDB sorts in memory, a server under load).
 */
export function isTimeout(error: unknown): boolean {
  if (error instanceof MongoNetworkTimeoutError || error instanceof MongoOperationTimeoutError) return true;
  if (error instanceof MongoServerError && Number(error.code) === 50) return true;
  return error instanceof Error && error.name === 'TimeoutError';
}

const STORE_STATUS: Record<StoreErrorKind, { status: number; headers?: Record<string, string> }> = {
  busy: { status: 503, headers: { 'Retry-After': '1' } },
  // Not 503 "try again": a blind retry could store the data twice.
  'outcome-unknown': { status: 504 },
  rejected: { status: 400 },
  'idempotency-conflict': { status: 422 },
};

/**
 * Maps any thrown value to the status and message a client may see. The
 * service raises HttpError (never ctx.throw); the store's and the driver's
 * errors are translated here, in one place.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof StoreError) {
    const { status, headers } = STORE_STATUS[error.kind];
    return new HttpError(status, error.message, headers, error.kind === 'busy');
  }
  // Reads only: a write's timeout is classified by the store first (outcome unknown, 504, no "try again").
  if (isTimeout(error)) {
    return new HttpError(504, 'the database did not answer in time (the query timed out), try again shortly', { 'Retry-After': '2' }, true);
  }
  if (isDatabaseUnavailable(error)) {
    return new HttpError(503, 'database unavailable, try again shortly', { 'Retry-After': '2' });
  }
  // Koa and its middleware attach `status`/`expose` to the errors they raise (e.g. 400).
  const maybe = error as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof maybe?.status === 'number' && maybe.status >= 400 && maybe.status < 500 && maybe.expose === true) {
    return new HttpError(maybe.status, String(maybe.message));
  }
  return new HttpError(500, 'internal server error');
}
