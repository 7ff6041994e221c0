import { HttpError, badRequest } from './errors';

/** BSON allows 100 levels; stay well inside it so the driver never throws on depth. */
const MAX_DEPTH = 64;

export type JsonObject = Record<string, unknown>;

/** Documents in one bulk request; keys and values (object members and array elements at every depth) in one document. */
export type DocumentLimits = { maxBulkDocuments: number; maxValuesPerDocument: number };

// String.prototype.isWellFormed is in Node 20, not yet in the ES2023 lib.
const wellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNREADABLE_TOP_KEY = /[\u0000-\u001f"\\]/;

/** Why a value is refused, and the path to it (collected innermost first as the walk unwinds). */
class Refusal {
  readonly path: string[] = [];
  constructor(readonly status: number, readonly reason: (where: string) => string) {}
  /** The refusal, one step further out. */
  within(step: string): Refusal {
    this.path.push(step);
    return this;
  }
}
const refuse = (reason: (where: string) => string) => new Refusal(400, reason);
const tooManyValues = (limit: number) => new Refusal(413, (where) => `${where} has more than ${limit} keys and values (limit MAX_VALUES_PER_DOCUMENT)`);

/**
 * Walks one value; returns a Refusal, or undefined when it may be stored. No path strings are built unless
 * something is refused (this runs on every value of every document). Recursion is bounded by MAX_DEPTH.
 */
function walk(node: unknown, depth: number, budget: { left: number; readonly limit: number }): Refusal | undefined {
  if (typeof node !== 'object' || node === null) {
    // JSON has no Infinity; 1e400 parses to it. MongoDB would store it and GET would answer null.
    if (typeof node === 'number' && !Number.isFinite(node)) return refuse((where) => `${where} is a number too large to store (${node})`);
    if (typeof node === 'string' && !wellFormed(node)) return refuse((where) => `${where} holds an unpaired UTF-16 surrogate, which cannot be stored as text`);
    return undefined;
  }
  if (depth > MAX_DEPTH) return refuse((where) => `${where} is nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(node)) {
    if ((budget.left -= node.length) < 0) return tooManyValues(budget.limit);
    for (let index = 0; index < node.length; index++) {
      const refusal = walk(node[index], depth + 1, budget);
      if (refusal) return refusal.within(`[${index}]`);
    }
    return undefined;
  }
  for (const key in node) {
    if (--budget.left < 0) return tooManyValues(budget.limit);
    if (key.charCodeAt(0) === 36 /* $ */) return refuse((where) => `key "${key}" at ${where} must not start with "$"`);
    if (key.includes('.')) return refuse((where) => `key "${key}" at ${where} must not contain "."`);
    if (key.includes('\0')) return refuse((where) => `key at ${where} must not contain a NUL character`);
    // FerretDB (the local database and the test stand-in) stores a document with such a top-level key but
    // then cannot read the collection back (or refuses `"` with an internal error): refused on every database.
    if (depth === 1 && UNREADABLE_TOP_KEY.test(key)) {
      return refuse((where) => `key ${JSON.stringify(key)} at ${where} must not hold a control character, \\ or " (at the top level of a document)`);
    }
    // The BSON encoder takes an object with this key for one of its own types, and refuses it.
    if (key === '_bsontype') return refuse((where) => `key "_bsontype" at ${where} is reserved (the BSON encoder reads it as a type tag)`);
    // Two such keys would become the same key once encoded as UTF-8 (both U+FFFD).
    if (!wellFormed(key)) return refuse((where) => `a key at ${where} holds an unpaired UTF-16 surrogate`);
    const refusal = walk((node as JsonObject)[key], depth + 1, budget);
    if (refusal) return refusal.within(`.${key}`);
  }
  return undefined;
}

/**
 * Checks one document a client wants stored. Refuses what MongoDB would treat as an operator or a path
 * (`$x`, `a.b`), what would clash with server-assigned ids, what it would store wrongly or reject
 * (non-finite numbers, unpaired surrogates), absurd nesting, and documents with too many values, naming
 * the offending path in the message.
 */
function validateDocument(value: unknown, limits: DocumentLimits, where = 'body'): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest(`${where} must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}`);
  }
  if (Object.prototype.hasOwnProperty.call(value, '_id')) throw badRequest(`${where}._id is not allowed: ids are assigned by the server`);
  const refusal = walk(value, 1, { left: limits.maxValuesPerDocument, limit: limits.maxValuesPerDocument });
  if (refusal) throw new HttpError(refusal.status, refusal.reason(where + refusal.path.reverse().join('')));
  return value as JsonObject;
}

/** A POST body: one object, or a non-empty array of objects (all valid, or none stored). */
export function validateInsertBody(body: unknown, limits: DocumentLimits): JsonObject | JsonObject[] {
  if (!Array.isArray(body)) return validateDocument(body, limits);
  if (body.length === 0) throw badRequest('body is an empty array: send at least one object');
  if (body.length > limits.maxBulkDocuments) {
    throw new HttpError(413, `body has ${body.length} documents, more than ${limits.maxBulkDocuments} in one request (limit MAX_BULK_DOCUMENTS)`);
  }
  return body.map((item, index) => validateDocument(item, limits, `body[${index}]`));
}

/** Where a body may hold a number a double cannot keep exactly: 16 or more digits, or an exponent. */
const MAYBE_INEXACT = /\d[\d.]{15}|\d[eE][+-]?\d/;
const TOKENS = /"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** A decimal as sign, significant digits and exponent ('0' for any zero); undefined for what is not one (Infinity). */
function decimal(literal: string): string | undefined {
  const parts = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!parts) return undefined;
  const digits = (parts[2] + (parts[3] ?? '')).replace(/^0+/, '');
  if (digits === '') return '0';
  const significant = digits.replace(/0+$/, '');
  return `${parts[1]}${significant}e${Number(parts[4] ?? 0) - (parts[3]?.length ?? 0) + digits.length - significant.length}`;
}

/**
 * Refuses (400) a number the database would not keep as written: an integer past 2^53 (stored as a double,
 * 9007199254740993 reads back as 9007199254740992), or any number whose double reads back as other digits
 * (too many of them, or too small: 1e-400 is 0). `text` is the body as sent, already valid JSON; only
 * bodies with long digit runs or exponents are scanned.
 */
export function checkNumbers(text: string): void {
  if (!MAYBE_INEXACT.test(text)) return;
  for (const [token] of text.matchAll(TOKENS)) {
    if (token.charCodeAt(0) === 34 /* " */ || (token.length < 16 && !/[eE]/.test(token))) continue;
    const value = Number(token);
    if ((!/[.eE]/.test(token) && Math.abs(value) > 2 ** 53) || decimal(token) !== decimal(String(value))) {
      throw badRequest(`number ${token} cannot be stored exactly (it would read back as ${String(value)}): send it as a string`);
    }
  }
}
