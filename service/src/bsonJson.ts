import { BSON, ObjectId, type Document } from 'mongodb';

/**
 * Stored documents' raw BSON (as store/batches.ts reads them) written out as JSON bytes, without `_id`: what
 * JSON.stringify of the decoded document gives, without decoding it (that was most of a read's CPU and
 * garbage). Keys and ASCII strings are copied byte for byte (escaped as JSON needs); numbers, booleans, null,
 * ObjectIds and dates written as JSON.stringify writes them. Any other type (binary, decimal, regex, a `$`
 * key such as a DBRef's, an integer past 2^53) or non-ASCII text goes through the decoder: the same, slower.
 */
export class JsonBytes {
  private out = Buffer.allocUnsafe(16 * 1024);
  private at = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.at;
  }

  /** Appends one byte (`[`, `,`, `]`). */
  push(byte: number): void {
    this.room(1);
    this.out[this.at++] = byte;
  }

  /** Forgets everything past `length` (a document that did not fit). */
  truncate(length: number): void {
    this.at = length;
  }

  /** What was written: the bytes themselves, or a copy when the buffer grew far past them (a large document written, then truncated). */
  take(): Buffer {
    const written = this.out.subarray(0, this.at);
    return this.out.length > 2 * this.at + 16 * 1024 ? Buffer.from(written) : written;
  }

  /** Appends the document as JSON, without its `_id`; returns that `_id` when it is an ObjectId. */
  document(raw: Uint8Array): ObjectId | undefined {
    const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const start = this.at;
    try {
      this.room(bytes.length + 64);
      return this.object(bytes, 0, true);
    } catch (error) {
      if (error !== UNUSUAL) throw error;
      this.at = start;
      const doc: Document = BSON.deserialize(bytes);
      const id = doc._id instanceof ObjectId ? doc._id : undefined;
      doc._id = undefined;
      this.ascii(JSON.stringify(doc), true);
      return id;
    }
  }

  /** The object or array at `start` (with its size); at the top, `_id` is left out and returned. */
  private object(bytes: Buffer, start: number, top: boolean, array = false): ObjectId | undefined {
    const end = start + bytes.readInt32LE(start) - 1;
    let at = start + 4;
    let id: ObjectId | undefined;
    let first = true;
    this.push(array ? 0x5b : 0x7b);
    while (at < end) {
      const type = bytes[at++];
      const nameStart = at;
      while (at < end && bytes[at] !== 0) at++;
      if (at >= end) throw UNUSUAL; // malformed: the decoder says how
      const nameEnd = at++;
      if (top && nameEnd - nameStart === 3 && bytes[nameStart] === 0x5f && bytes[nameStart + 1] === 0x69 && bytes[nameStart + 2] === 0x64) {
        if (type !== 0x07) throw UNUSUAL; // an `_id` of another type: the decoder's answer
        id = new ObjectId(bytes.subarray(at, at + 12));
        at += 12;
        continue;
      }
      if (!first) this.push(0x2c);
      first = false;
      if (!array) {
        if (bytes[nameStart] === 0x24) throw UNUSUAL; // `$`: a DBRef and the like, which the decoder makes objects of
        this.text(bytes, nameStart, nameEnd);
        this.push(0x3a);
      }
      at = this.value(bytes, type, at);
    }
    this.push(array ? 0x5d : 0x7d);
    return id;
  }

  /** Writes the value of type `type` at `at`; returns where the next element starts. */
  private value(bytes: Buffer, type: number, at: number): number {
    switch (type) {
      case 0x01: {
        const number = bytes.readDoubleLE(at);
        this.ascii(Number.isFinite(number) ? String(number) : 'null');
        return at + 8;
      }
      case 0x02: {
        const length = bytes.readInt32LE(at);
        this.text(bytes, at + 4, at + 3 + length);
        return at + 4 + length;
      }
      case 0x03:
      case 0x04:
        this.object(bytes, at, false, type === 0x04);
        return at + bytes.readInt32LE(at);
      case 0x07:
        this.ascii(`"${bytes.toString('hex', at, at + 12)}"`);
        return at + 12;
      case 0x08:
        this.ascii(bytes[at] === 1 ? 'true' : 'false');
        return at + 1;
      case 0x09:
        this.ascii(JSON.stringify(new Date(bytes.readInt32LE(at + 4) * 4294967296 + bytes.readUInt32LE(at))));
        return at + 8;
      case 0x0a:
        this.ascii('null');
        return at;
      case 0x10:
        this.ascii(String(bytes.readInt32LE(at)));
        return at + 4;
      case 0x12: {
        const long = bytes.readBigInt64LE(at);
        if (long > MAX_SAFE || long < -MAX_SAFE) throw UNUSUAL;
        this.ascii(String(Number(long)));
        return at + 8;
      }
      default:
        throw UNUSUAL;
    }
  }

  /** A JSON string literal of the ASCII bytes from `start` to `end`, escaped as JSON.stringify escapes them. */
  private text(bytes: Buffer, start: number, end: number): void {
    this.room(2 + (end - start) * 6);
    const out = this.out;
    let at = this.at;
    out[at++] = 0x22;
    for (let from = start; from < end; from++) {
      const byte = bytes[from];
      if (byte >= 0x80) throw UNUSUAL; // UTF-8 beyond ASCII: the decoder checks and decodes it
      if (byte < 0x20 || byte === 0x22 || byte === 0x5c) {
        const escape = ESCAPES[byte];
        for (let i = 0; i < escape.length; i++) out[at++] = escape.charCodeAt(i);
      } else {
        out[at++] = byte;
      }
    }
    out[at++] = 0x22;
    this.at = at;
  }

  /** Text that is ASCII by construction (numbers, literals, hex); `any`: text of any kind, as UTF-8. */
  private ascii(text: string, any = false): void {
    if (any) {
      this.room(Buffer.byteLength(text));
      this.at += this.out.write(text, this.at);
      return;
    }
    this.room(text.length);
    for (let i = 0; i < text.length; i++) this.out[this.at++] = text.charCodeAt(i);
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.at + bytes));
    this.out.copy(grown, 0, 0, this.at);
    this.out = grown;
  }
}

const UNUSUAL = Symbol('unusual'); // thrown inside a walk: this document needs the decoder
const MAX_SAFE = 2n ** 53n;

/** JSON.stringify's escapes for the bytes that need one. */
const ESCAPES: string[] = Array.from({ length: 0x5d }, (_, byte) => (byte < 0x20 || byte === 0x22 || byte === 0x5c ? JSON.stringify(String.fromCharCode(byte)).slice(1, -1) : ''));
