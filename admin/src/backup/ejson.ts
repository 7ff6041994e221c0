/**
 * Canonical Extended JSON (v2) for whole documents, in both directions, keeping the order of every
 * document's fields exactly as the server holds them.
 *
 * Why not the driver's EJSON.stringify / EJSON.parse: both go through plain JavaScript objects, and a
 * JavaScript object puts integer-like keys ("0", "15") before all others, so { b: 1, "2": 1 } would come
 * back as { "2": 1, b: 1 }, another document to MongoDB. Here the writer walks the raw BSON bytes
 * (find with `raw: true`) and the reader builds Maps, which the BSON serializer writes in insertion order.
 *
 * The output is what `mongoexport --jsonFormat=canonical` writes and what `mongoimport` reads: one
 * compact JSON object per document, every number typed ({"$numberInt":"1"}, {"$numberLong":...},
 * {"$numberDouble":"-0.0"}, {"$numberDecimal":...}), dates as {"$date":{"$numberLong":"<ms>"}}.
 * Rare types (Decimal128, regular expressions, timestamps' kin, code, symbols, MinKey/MaxKey, DBPointer,
 * old binary) are converted by the driver's own BSON library, one value at a time.
 *
 * Depends only on the `mongodb` driver (its bundled `bson`), so it runs as well inside a container.
 */
import { BSON, Binary, Double, Int32, Long, ObjectId } from 'mongodb';

const { EJSON } = BSON;
const LEAF_OPTIONS = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true } as const;

/** -0.0, NaN and Infinity spelled as the Extended JSON spec (and js-bson) spells them. */
export function doubleText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (Object.is(value, -0)) return '-0.0';
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

function cstringEnd(buffer: Buffer, at: number): number {
  const end = buffer.indexOf(0, at);
  if (end < 0) throw new Error('malformed BSON: unterminated name');
  return end;
}

/** Bytes of the value of an element of `type` starting at `at` (for the rare types handed to js-bson). */
function valueLength(buffer: Buffer, type: number, at: number): number {
  switch (type) {
    case 0x05:
      return 5 + buffer.readInt32LE(at);
    case 0x06:
    case 0x7f:
    case 0xff:
      return 0;
    case 0x0b: {
      const pattern = cstringEnd(buffer, at);
      return cstringEnd(buffer, pattern + 1) + 1 - at;
    }
    case 0x0c:
      return 4 + buffer.readInt32LE(at) + 12;
    case 0x0d:
    case 0x0e:
      return 4 + buffer.readInt32LE(at);
    case 0x0f:
      return buffer.readInt32LE(at);
    case 0x11:
      return 8;
    case 0x13:
      return 16;
    default:
      throw new Error(`malformed BSON: unknown element type 0x${type.toString(16)}`);
  }
}

/** One element converted by js-bson: a one-field document around the element's own bytes. */
function rareValue(buffer: Buffer, elementStart: number, elementEnd: number): string {
  const single = Buffer.alloc(4 + (elementEnd - elementStart) + 1);
  single.writeInt32LE(single.length, 0);
  buffer.copy(single, 4, elementStart, elementEnd);
  const doc = BSON.deserialize(single, LEAF_OPTIONS);
  const [value] = Object.values(doc);
  return EJSON.stringify(value, { relaxed: false });
}

function documentText(buffer: Buffer, start: number, isArray: boolean): string {
  const size = buffer.readInt32LE(start);
  const end = start + size - 1; // the terminating 0x00
  if (size < 5 || end >= buffer.length || buffer[end] !== 0) throw new Error('malformed BSON: bad document length');
  let at = start + 4;
  let out = isArray ? '[' : '{';
  let first = true;
  while (at < end) {
    const elementStart = at;
    const type = buffer[at];
    const nameEnd = cstringEnd(buffer, at + 1);
    const name = buffer.toString('utf8', at + 1, nameEnd);
    at = nameEnd + 1;
    let value: string;
    switch (type) {
      case 0x01:
        value = `{"$numberDouble":"${doubleText(buffer.readDoubleLE(at))}"}`;
        at += 8;
        break;
      case 0x02: {
        const length = buffer.readInt32LE(at);
        value = JSON.stringify(buffer.toString('utf8', at + 4, at + 4 + length - 1));
        at += 4 + length;
        break;
      }
      case 0x03:
      case 0x04:
        value = documentText(buffer, at, type === 0x04);
        at += buffer.readInt32LE(at);
        break;
      case 0x05: {
        const length = buffer.readInt32LE(at);
        const subType = buffer[at + 4];
        if (subType === 0x02) {
          value = rareValue(buffer, elementStart, at + 5 + length);
        } else {
          const base64 = buffer.toString('base64', at + 5, at + 5 + length);
          value = `{"$binary":{"base64":"${base64}","subType":"${subType.toString(16).padStart(2, '0')}"}}`;
        }
        at += 5 + length;
        break;
      }
      case 0x07:
        value = `{"$oid":"${buffer.toString('hex', at, at + 12)}"}`;
        at += 12;
        break;
      case 0x08:
        value = buffer[at] === 0 ? 'false' : 'true';
        at += 1;
        break;
      case 0x09:
        value = `{"$date":{"$numberLong":"${buffer.readBigInt64LE(at)}"}}`;
        at += 8;
        break;
      case 0x0a:
        value = 'null';
        break;
      case 0x10:
        value = `{"$numberInt":"${buffer.readInt32LE(at)}"}`;
        at += 4;
        break;
      case 0x11:
        value = `{"$timestamp":{"t":${buffer.readUInt32LE(at + 4)},"i":${buffer.readUInt32LE(at)}}}`;
        at += 8;
        break;
      case 0x12:
        value = `{"$numberLong":"${buffer.readBigInt64LE(at)}"}`;
        at += 8;
        break;
      default: {
        const length = valueLength(buffer, type, at);
        value = rareValue(buffer, elementStart, at + length);
        at += length;
      }
    }
    if (at > end) throw new Error('malformed BSON: element runs past its document');
    out += first ? '' : ',';
    out += isArray ? value : `${JSON.stringify(name)}:${value}`;
    first = false;
  }
  return out + (isArray ? ']' : '}');
}

/** One raw BSON document (as `find(…, { raw: true })` yields it) as one line of canonical Extended JSON. */
export function bsonToCanonicalLine(raw: Uint8Array): string {
  const buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  return documentText(buffer, 0, false);
}

/** What a document line parses to: Maps (ordered) for documents, arrays, and BSON values. */
export type Value = Map<string, Value> | Value[] | string | boolean | null | number | object;

class LineParser {
  private at = 0;
  constructor(private readonly text: string) {}

  parse(): Map<string, Value> {
    const value = this.value();
    this.space();
    if (this.at !== this.text.length) this.fail('text after the document');
    if (!(value instanceof Map)) this.fail('not a JSON object');
    return value as Map<string, Value>;
  }

  private fail(what: string): never {
    throw new Error(`not canonical Extended JSON (${what} at character ${this.at + 1})`);
  }

  private space(): void {
    while (this.at < this.text.length) {
      const c = this.text.charCodeAt(this.at);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.at += 1;
    }
  }

  private value(): Value {
    this.space();
    const c = this.text[this.at];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (this.text.startsWith('true', this.at)) return (this.at += 4), true;
    if (this.text.startsWith('false', this.at)) return (this.at += 5), false;
    if (this.text.startsWith('null', this.at)) return (this.at += 4), null;
    const number = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.at, this.at + 40));
    if (!number) this.fail('unexpected character');
    this.at += number[0].length;
    // A bare JSON number is not canonical; read it as mongoimport does (an integer, else a double).
    const n = Number(number[0]);
    return Number.isInteger(n) && !/[.eE]/.test(number[0]) ? (Math.abs(n) < 2 ** 31 ? new Int32(n) : Long.fromString(number[0])) : new Double(n);
  }

  private string(): string {
    const start = this.at;
    this.at += 1;
    let plain = true;
    for (;;) {
      const c = this.text.charCodeAt(this.at);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) break;
      if (c === 0x5c) {
        plain = false;
        this.at += 2;
        continue;
      }
      this.at += 1;
    }
    this.at += 1;
    return plain ? this.text.slice(start + 1, this.at - 1) : (JSON.parse(this.text.slice(start, this.at)) as string);
  }

  private array(): Value[] {
    this.at += 1;
    const items: Value[] = [];
    this.space();
    if (this.text[this.at] === ']') return (this.at += 1), items;
    for (;;) {
      items.push(this.value());
      this.space();
      const c = this.text[this.at++];
      if (c === ']') return items;
      if (c !== ',') this.fail('expected , or ]');
    }
  }

  private object(): Value {
    const start = this.at;
    this.at += 1;
    const entries = new Map<string, Value>();
    this.space();
    if (this.text[this.at] === '}') return (this.at += 1), entries;
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.fail('expected a field name');
      const key = this.string();
      this.space();
      if (this.text[this.at++] !== ':') this.fail('expected :');
      if (entries.size === 0 && key.startsWith('$')) {
        const typed = this.typed(key, start);
        if (typed !== undefined) return typed;
      }
      entries.set(key, this.value());
      this.space();
      const c = this.text[this.at++];
      if (c === '}') return entries;
      if (c !== ',') this.fail('expected , or }');
    }
  }

  /** A type wrapper ({"$numberInt":"1"}, …) whose first key `key` was just read; undefined if it is a plain document. */
  private typed(key: string, start: number): Value | undefined {
    const save = this.at;
    this.space();
    const simple = (make: (text: string) => Value): Value | undefined => {
      if (this.text[this.at] !== '"') return undefined;
      const text = this.string();
      this.space();
      if (this.text[this.at] !== '}') return undefined;
      this.at += 1;
      return make(text);
    };
    let result: Value | undefined;
    switch (key) {
      case '$numberInt':
        result = simple((text) => new Int32(Number(text)));
        break;
      case '$numberLong':
        result = simple((text) => Long.fromString(text));
        break;
      case '$numberDouble':
        result = simple((text) => new Double(text === '-0.0' ? -0 : Number(text)));
        break;
      case '$oid':
        result = simple((text) => ObjectId.createFromHexString(text));
        break;
      default:
        result = undefined;
    }
    if (result !== undefined) return result;
    this.at = save;
    if (key === '$date' || key === '$binary') {
      // The common two by hand: {"$date":{"$numberLong":"<ms>"}} and {"$binary":{"base64":…,"subType":…}}.
      const inner = this.value();
      this.space();
      if (this.text[this.at] === '}') {
        if (key === '$date' && inner instanceof Long) return (this.at += 1), new Date(inner.toNumber());
        if (key === '$binary' && inner instanceof Map && inner.size === 2) {
          const base64 = inner.get('base64');
          const subType = inner.get('subType');
          if (typeof base64 === 'string' && typeof subType === 'string' && subType !== '02') {
            this.at += 1;
            return new Binary(Buffer.from(base64, 'base64'), parseInt(subType, 16));
          }
        }
      }
      this.at = save;
    }
    if (!['$date', '$binary', '$numberDecimal', '$timestamp', '$regularExpression', '$code', '$symbol', '$minKey', '$maxKey', '$undefined', '$dbPointer'].includes(key)) {
      return undefined;
    }
    // Any other type: the driver's EJSON over just this object's text.
    this.at = start;
    this.skipObject();
    return EJSON.parse(this.text.slice(start, this.at), { relaxed: false }) as Value;
  }

  private skipObject(): void {
    let depth = 0;
    for (;;) {
      const c = this.text[this.at];
      if (c === undefined) this.fail('unterminated object');
      if (c === '"') {
        this.string();
        continue;
      }
      this.at += 1;
      if (c === '{' || c === '[') depth += 1;
      else if (c === '}' || c === ']') {
        depth -= 1;
        if (depth === 0) return;
      }
    }
  }
}

/** One line of canonical Extended JSON as a document to insert, its fields in the line's order. */
export function canonicalLineToDocument(line: string): Map<string, Value> {
  return new LineParser(line).parse();
}

/** The exact -0.0 spelling in a canonical line (it cannot occur inside a JSON string, whose quotes are escaped). */
export const NEGATIVE_ZERO = '{"$numberDouble":"-0.0"}';

/** One top-level field of a raw BSON document as canonical Extended JSON, or undefined if absent. */
export function canonicalField(raw: Uint8Array, field: string): string | undefined {
  const line = bsonToCanonicalLine(raw);
  // Re-walk with the parser rather than the bytes: the fields of a listCollections/listIndexes entry are few.
  const doc = canonicalLineToDocument(line);
  return doc.has(field) ? valueToCanonical(doc.get(field)!) : undefined;
}

/** A parsed value back to canonical text (Maps keep their order). */
export function valueToCanonical(value: Value): string {
  if (value instanceof Map) return BSON_LINE(value);
  if (Array.isArray(value)) return `[${value.map(valueToCanonical).join(',')}]`;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  return BSON_LINE(new Map([['v', value]])).slice('{"v":'.length, -1);
}

const BSON_LINE = (doc: Map<string, Value>) => bsonToCanonicalLine(BSON.serialize(doc as unknown as BSON.Document));
