/**
 * What the store can tell its caller about a failed operation, in its own
 * terms (the HTTP layer maps these to statuses in errors.ts). Errors that mean
 * "the database is away" stay the driver's own and are classified there too.
 */
export type StoreErrorKind =
  /** This process already holds as many cursors as it may: try again shortly. */
  | 'busy'
  /** The write was sent but no answer came: it may or may not have been applied. */
  | 'outcome-unknown'
  /** The database refused a document as invalid; nothing of the request was kept. */
  | 'rejected'
  /** An Idempotency-Key was used before with a different body. */
  | 'idempotency-conflict';

export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}
