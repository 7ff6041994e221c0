import { badRequest } from './errors';

/** BSON allows 100 levels; stay well inside it so the driver never throws on depth. */
export const MAX_DEPTH = 64;

export type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Checks one document a client wants stored. Refuses what MongoDB would treat
 * as an operator or a path (`$x`, `a.b`), what would clash with server-assigned
 * ids, and absurd nesting, naming the offending path in the message.
 */
export function validateDocument(value: unknown, where = 'body'): JsonObject {
  if (!isObject(value)) {
    throw badRequest(`${where} must be a JSON object, got ${describe(value)}`);
  }
  if (Object.prototype.hasOwnProperty.call(value, '_id')) {
    throw badRequest(`${where}._id is not allowed: ids are assigned by the server`);
  }
  // Iterative walk: a hostile, deeply nested body cannot blow the stack.
  const stack: Array<{ node: unknown; path: string; depth: number }> = [{ node: value, path: where, depth: 1 }];
  while (stack.length > 0) {
    const { node, path, depth } = stack.pop()!;
    if (depth > MAX_DEPTH) throw badRequest(`${path} is nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(node)) {
      node.forEach((item, index) => stack.push({ node: item, path: `${path}[${index}]`, depth: depth + 1 }));
    } else if (isObject(node)) {
      for (const [key, child] of Object.entries(node)) {
        if (key.startsWith('$')) throw badRequest(`key "${key}" at ${path} must not start with "$"`);
        if (key.includes('.')) throw badRequest(`key "${key}" at ${path} must not contain "."`);
        if (key.includes('\0')) throw badRequest(`key at ${path} must not contain a NUL character`);
        stack.push({ node: child, path: `${path}.${key}`, depth: depth + 1 });
      }
    }
  }
  return value;
}

/** A POST body: one object, or a non-empty array of objects (all valid, or none stored). */
export function validateInsertBody(body: unknown): JsonObject | JsonObject[] {
  if (Array.isArray(body)) {
    if (body.length === 0) throw badRequest('body is an empty array: send at least one object');
    return body.map((item, index) => validateDocument(item, `body[${index}]`));
  }
  return validateDocument(body);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`;
}
