/**
 * The backup file: one gzip stream of lines (see docs/backup.md, "The file").
 *
 *   {"#backup":"koa-mongodb-backup","version":1,"database":"flask_db",…}              header
 *   {"#file":"data.json","collection":"data","options":{…},"indexes":[…]}             a collection starts
 *   {"_id":{"$oid":"…"},"n":{"$numberInt":"1"},…}                                     its documents, one a line,
 *   …                                                                                  canonical Extended JSON
 *   {"#done":"data","documents":2,"bytes":120,"sha256":"…","sum":"…"}                  it ends: count, bytes, hashes
 *   …more collections…
 *   {"#end":"koa-mongodb-backup","collections":1,"documents":2,"bytes":…,"sha256":"…"} totals; sha256 of all above
 *
 * Frame lines start with {"# and documents never do (MongoDB puts _id first), so
 *   gunzip -c FILE | awk -F'"' '$2=="#file"{f=$4;next} /^\{"#/{next} {print > f}'
 * splits it into <collection>.json files that `mongoimport` reads as they are.
 *
 * `sha256` of a collection covers its document lines, each with its newline, in file order; `sum` is the
 * sum (mod 2^256) of the sha256 of each document line alone, which does not depend on order: restore
 * compares it with the same sum over what the database holds after loading.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync, type ReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { canonicalLineToDocument, type Value } from './ejson';

export const FORMAT = 'koa-mongodb-backup';
export const FORMAT_VERSION = 1;
const MASK = (1n << 256n) - 1n;

export interface ArchiveHeader {
  database: string;
  createdAt: string;
  /** The server's version (buildInfo), for the reader's information. */
  server?: string;
}

export interface CollectionTotals {
  documents: number;
  bytes: number;
  sha256: string;
  sum: string;
}

export interface ArchivedCollection extends CollectionTotals {
  name: string;
  file: string;
  /** The collection's options (listCollections) and indexes (listIndexes), fields in the server's order. */
  options: Map<string, Value>;
  indexes: Array<Map<string, Value>>;
}

export interface Manifest {
  header: ArchiveHeader & { version: number };
  collections: ArchivedCollection[];
  documents: number;
  /** Uncompressed bytes of document lines (what the collections hold, as Extended JSON). */
  bytes: number;
  /** Bytes of the file itself (compressed). */
  fileBytes: number;
  sha256: string;
}

/** The file is no (whole) backup: exit code 3, nothing written. */
export class ArchiveError extends Error {}

/** A file name for a collection that every shell and file system takes: [A-Za-z0-9_.-] as is, the rest %XX. */
export function collectionFile(name: string): string {
  const safe = Array.from(Buffer.from(name, 'utf8'))
    .map((byte) => (/[A-Za-z0-9_.-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
  return `${safe}.json`;
}

/** Running hashes of a run of document lines. */
export class LineTally {
  documents = 0;
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private sumValue = 0n;

  add(line: Buffer | string): void {
    const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
    this.hash.update(bytes);
    this.hash.update('\n');
    this.sumValue = (this.sumValue + BigInt(`0x${createHash('sha256').update(bytes).digest('hex')}`)) & MASK;
    this.documents += 1;
    this.bytes += bytes.length + 1;
  }

  /** Only the order-free sum (what restore computes over the database). */
  addToSum(line: string): void {
    this.sumValue = (this.sumValue + BigInt(`0x${createHash('sha256').update(line, 'utf8').digest('hex')}`)) & MASK;
    this.documents += 1;
  }

  get sum(): string {
    return this.sumValue.toString(16).padStart(64, '0');
  }

  totals(): CollectionTotals {
    return { documents: this.documents, bytes: this.bytes, sha256: this.hash.digest('hex'), sum: this.sum };
  }
}

/** Frame lines, as the writer writes them (the reader accepts exactly these shapes). */
export const frames = {
  header: (header: ArchiveHeader) => JSON.stringify({ '#backup': FORMAT, version: FORMAT_VERSION, ...header }),
  start: (name: string, optionsText: string, indexTexts: string[]) =>
    `{"#file":${JSON.stringify(collectionFile(name))},"collection":${JSON.stringify(name)},"options":${optionsText},"indexes":[${indexTexts.join(',')}]}`,
  done: (name: string, totals: CollectionTotals) => JSON.stringify({ '#done': name, ...totals }),
  end: (totals: { collections: number; documents: number; bytes: number; sha256: string }) => JSON.stringify({ '#end': FORMAT, ...totals }),
};

/**
 * Lines of the uncompressed archive as Buffers (without the newline), streamed from the file.
 * gzip's own failures become ArchiveErrors in plain words.
 */
export async function* archiveLines(path: string, onBytes?: (fileBytes: number) => void): AsyncGenerator<Buffer> {
  let file: ReadStream;
  try {
    if (statSync(path).isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
    file = createReadStream(path);
    await new Promise<void>((resolve, reject) => file.once('open', () => resolve()).once('error', reject));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ArchiveError(code === 'ENOENT' ? `no such file: ${path}` : code === 'EISDIR' ? `${path} is a directory, not a backup file` : `cannot read ${path}: ${(error as Error).message}`);
  }
  let fileBytes = 0;
  file.on('data', (chunk) => {
    fileBytes += chunk.length;
    onBytes?.(fileBytes);
  });
  const gunzip = createGunzip();
  file.on('error', (error) => gunzip.destroy(error));
  file.pipe(gunzip);
  let rest: Buffer | undefined;
  let first = true;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let data = rest ? Buffer.concat([rest, chunk]) : chunk;
      let at = 0;
      for (;;) {
        const newline = data.indexOf(0x0a, at);
        if (newline < 0) break;
        yield data.subarray(at, newline);
        at = newline + 1;
      }
      data = data.subarray(at);
      rest = data.length ? Buffer.from(data) : undefined;
      first = false;
    }
  } catch (error) {
    if (error instanceof ArchiveError) throw error;
    const message = (error as Error).message;
    if (first && /incorrect header check|unknown compression method/.test(message)) throw new ArchiveError(`${path} is not a backup file (not gzip data)`);
    if (/unexpected end of file/.test(message)) throw new ArchiveError(`${path} is truncated (the compressed data ends early): it is not a whole backup`);
    throw new ArchiveError(`${path} is damaged (${message}): it is not a whole backup`);
  } finally {
    file.destroy();
  }
  if (rest) throw new ArchiveError(`${path} is truncated (its last line is cut off): it is not a whole backup`);
}

const isFrame = (line: Buffer) => line[0] === 0x7b && line[1] === 0x22 && line[2] === 0x23; // {"#

function parseFrame(line: Buffer, path: string): Record<string, unknown> {
  try {
    return JSON.parse(line.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new ArchiveError(`${path} is damaged: a frame line is not JSON`);
  }
}

export interface ReadEvents {
  /** A collection starts (pass 2 creates its temporary collection here). */
  start?(collection: Omit<ArchivedCollection, keyof CollectionTotals>): Promise<void> | void;
  /** One document line of the current collection. */
  document?(line: Buffer): Promise<void> | void;
  done?(collection: ArchivedCollection): Promise<void> | void;
  /** Compressed bytes read so far. */
  progress?(fileBytes: number, documents: number): void;
}

/**
 * Reads the whole archive, checking every frame, count and hash against what the file says, and calls
 * `events` along the way. Resolves with the manifest only if the file is whole and unaltered; otherwise
 * rejects with an ArchiveError (a truncated, damaged or altered file, or not a backup at all).
 */
export async function readArchive(path: string, events: ReadEvents = {}): Promise<Manifest> {
  const all = createHash('sha256');
  let fileBytes = 0;
  let header: Manifest['header'] | undefined;
  let current: { info: Omit<ArchivedCollection, keyof CollectionTotals>; tally: LineTally } | undefined;
  const collections: ArchivedCollection[] = [];
  let documents = 0;
  let bytes = 0;
  let ended: Record<string, unknown> | undefined;
  const altered = (what: string) => new ArchiveError(`${path} was altered or damaged: ${what}`);

  for await (const line of archiveLines(path, (n) => (fileBytes = n))) {
    if (ended) throw altered('there is data after its end line');
    if (!header) {
      const frame = isFrame(line) ? parseFrame(line, path) : undefined;
      if (frame?.['#backup'] !== FORMAT) throw new ArchiveError(`${path} is not a backup made by npm run backup (no header line)`);
      if (frame.version !== FORMAT_VERSION) throw new ArchiveError(`${path} is a version ${String(frame.version)} backup; this tool reads version ${FORMAT_VERSION}`);
      header = { version: FORMAT_VERSION, database: String(frame.database), createdAt: String(frame.createdAt), server: frame.server as string | undefined };
      all.update(line).update('\n');
      continue;
    }
    if (!isFrame(line)) {
      if (!current) throw altered('a document outside any collection');
      current.tally.add(line);
      if (events.document) await events.document(line);
      if (current.tally.documents % 2000 === 0) events.progress?.(fileBytes, documents + current.tally.documents);
      all.update(line).update('\n');
      continue;
    }
    const frame = parseFrame(line, path);
    if ('#file' in frame) {
      if (current) throw altered(`collection ${current.info.name} has no end line`);
      let parsed: Map<string, Value>;
      try {
        parsed = canonicalLineToDocument(line.toString('utf8'));
      } catch {
        throw altered('a collection line is not canonical Extended JSON');
      }
      const info = {
        name: String(frame.collection),
        file: String(frame['#file']),
        options: (parsed.get('options') as Map<string, Value>) ?? new Map(),
        indexes: (parsed.get('indexes') as Array<Map<string, Value>>) ?? [],
      };
      if (!(info.options instanceof Map) || !Array.isArray(info.indexes)) throw altered(`collection ${info.name}: options or indexes are malformed`);
      if (collections.some((c) => c.name === info.name)) throw altered(`collection ${info.name} appears twice`);
      current = { info, tally: new LineTally() };
      if (events.start) await events.start(info);
    } else if ('#done' in frame) {
      if (!current || frame['#done'] !== current.info.name) throw altered('an end line without its collection');
      const totals = current.tally.totals();
      for (const key of ['documents', 'bytes', 'sha256', 'sum'] as const) {
        if (frame[key] !== totals[key]) {
          throw altered(`collection ${current.info.name}: its ${key === 'sum' || key === 'sha256' ? 'checksum' : key} (${String(totals[key])}) differs from what the file says (${String(frame[key])})`);
        }
      }
      const collection = { ...current.info, ...totals };
      collections.push(collection);
      documents += totals.documents;
      bytes += totals.bytes;
      current = undefined;
      if (events.done) await events.done(collection);
    } else if ('#end' in frame) {
      if (current) throw altered(`collection ${current.info.name} has no end line`);
      const sha256 = all.digest('hex');
      const expected = { collections: collections.length, documents, bytes, sha256 };
      for (const key of Object.keys(expected) as Array<keyof typeof expected>) {
        if (frame[key] !== expected[key]) throw altered(`the end line's ${key} (${String(frame[key])}) differs from the content (${String(expected[key])})`);
      }
      ended = frame;
      continue;
    } else {
      throw altered('an unknown frame line');
    }
    all.update(line).update('\n');
  }
  if (!header) throw new ArchiveError(`${path} is empty: not a backup`);
  if (!ended) throw new ArchiveError(`${path} is truncated (no end line${current ? `; it stops inside collection ${current.info.name}` : ''}): it is not a whole backup`);
  events.progress?.(fileBytes, documents);
  return { header, collections, documents, bytes, fileBytes, sha256: String(ended.sha256) };
}
