/**
 * Writes a backup of one database into the archive format (archive.ts), streaming: one cursor batch and
 * one compressed chunk in memory at a time, whatever the collection's size.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, createWriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { createGzip, constants as zlib } from 'node:zlib';
import { BSON, type Db } from 'mongodb';
import { frames, LineTally } from './archive';
import { bsonToCanonicalLine, canonicalField } from './ejson';
import { isWorkCollection } from './names';

export interface BackupProgress {
  collection: string;
  documents: number;
  /** Documents the collection held when its turn came (an estimate). */
  expected: number;
  bytes: number;
}

export interface BackupOptions {
  /** Called every second or so during long work. */
  progress?: (state: BackupProgress) => void;
  /** A line for each notable thing (skipped views, leftovers of an interrupted restore). */
  note?: (line: string) => void;
  now?: () => Date;
}

export interface BackupSummary {
  database: string;
  collections: Array<{ name: string; documents: number; bytes: number; indexes: number }>;
  documents: number;
  /** Uncompressed bytes of document lines. */
  bytes: number;
  sha256: string;
}

/** Pushes text into a Writable in large chunks, waiting whenever it asks (bounded memory). */
class ChunkedWriter {
  private pending: string[] = [];
  private size = 0;
  constructor(private readonly sink: Writable) {}

  async line(text: string): Promise<void> {
    this.pending.push(text, '\n');
    this.size += text.length + 1;
    if (this.size >= 256 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.size = 0;
    if (!this.sink.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => {
          this.sink.off('drain', onDrain);
          reject(error);
        };
        const onDrain = () => {
          this.sink.off('error', onError);
          resolve();
        };
        this.sink.once('drain', onDrain).once('error', onError);
      });
    }
  }
}

async function collectionsOf(db: Db, note: (line: string) => void): Promise<Array<{ name: string; options: string }>> {
  const entries = (await db.listCollections({}, { raw: true } as object).toArray()) as unknown as Buffer[];
  const found: Array<{ name: string; options: string }> = [];
  for (const raw of entries) {
    const entry = BSON.deserialize(raw, { promoteValues: true });
    const name = String(entry.name);
    if (name.startsWith('system.')) continue;
    if (entry.type !== undefined && entry.type !== 'collection') {
      note(`skipped ${entry.type} ${name}: only collections are backed up`);
      continue;
    }
    if (isWorkCollection(name)) {
      note(`skipped ${name}: left by an interrupted restore (see docs/backup.md)`);
      continue;
    }
    found.push({ name, options: canonicalField(raw, 'options') ?? '{}' });
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Streams the backup of `db` into `sink` (gzip'd), and ends it. */
export async function writeBackup(db: Db, sink: Writable, options: BackupOptions = {}): Promise<BackupSummary> {
  const note = options.note ?? (() => undefined);
  const gzip = createGzip({ level: 6, memLevel: 9, strategy: zlib.Z_DEFAULT_STRATEGY });
  const finished = new Promise<void>((resolve, reject) => {
    sink.once('finish', resolve).once('close', resolve).once('error', reject);
    gzip.once('error', reject);
  });
  gzip.pipe(sink);
  const out = new ChunkedWriter(gzip);
  const all = createHash('sha256');
  const write = async (line: string) => {
    all.update(line).update('\n');
    await out.line(line);
  };

  let server: string | undefined;
  let ferretdb = false;
  try {
    const info = await db.admin().command({ buildInfo: 1 });
    server = String(info.version);
    ferretdb = 'ferretdbVersion' in info;
  } catch {
    server = undefined;
  }
  const summary: BackupSummary = { database: db.databaseName, collections: [], documents: 0, bytes: 0, sha256: '' };
  await write(frames.header({ database: db.databaseName, createdAt: (options.now?.() ?? new Date()).toISOString(), ...(server ? { server } : {}) }));

  for (const { name, options: optionsText } of await collectionsOf(db, note)) {
    const collection = db.collection(name);
    const indexes = ((await collection.listIndexes({ raw: true } as object).toArray()) as unknown as Buffer[]).map((raw) => bsonToCanonicalLine(raw));
    await write(frames.start(name, optionsText, indexes));
    // For the progress line only, and alongside the read (on FerretDB a count is a scan: 1.5 s at 100 000).
    let expected = 0;
    void collection.estimatedDocumentCount().then(
      (n) => (expected = n),
      () => undefined,
    );
    const tally = new LineTally();
    let lastReport = Date.now();
    // MongoDB: in _id order, from the _id index, so that a document moved by a concurrent update is seen
    // once, never twice. FerretDB v1 cannot walk that index (it would read and sort the whole collection in
    // memory before the first document: 24 s of a 34 s backup at 100 000 documents); its natural order
    // (SQLite's rowid, which an update keeps) has the same property.
    const cursor = collection.find({}, { raw: true, batchSize: 1000, ...(ferretdb ? {} : { sort: { _id: 1 } }) } as object);
    for await (const raw of cursor as AsyncIterable<Buffer>) {
      const line = bsonToCanonicalLine(raw);
      if (!line.startsWith('{"_id":')) throw new Error(`a document of ${name} does not start with _id; this server is not one this tool knows`);
      tally.add(line);
      await write(line);
      if (Date.now() - lastReport >= 1000) {
        lastReport = Date.now();
        options.progress?.({ collection: name, documents: tally.documents, expected, bytes: summary.bytes + tally.bytes });
      }
    }
    const totals = tally.totals();
    await write(frames.done(name, totals));
    summary.collections.push({ name, documents: totals.documents, bytes: totals.bytes, indexes: indexes.length });
    summary.documents += totals.documents;
    summary.bytes += totals.bytes;
  }
  summary.sha256 = all.digest('hex');
  await out.line(frames.end({ collections: summary.collections.length, documents: summary.documents, bytes: summary.bytes, sha256: summary.sha256 }));
  await out.flush();
  gzip.end();
  await finished;
  return summary;
}

/**
 * The backup into the file `path`, which appears only once whole: written beside it as
 * `<path>.partial`, flushed to disk, then renamed over `path`. On failure the partial file is removed.
 */
export async function writeBackupFile(db: Db, path: string, options: BackupOptions = {}): Promise<BackupSummary & { fileBytes: number }> {
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w', 0o600);
  const stream = createWriteStream('', { fd, autoClose: false });
  try {
    const summary = await writeBackup(db, stream, options);
    fsyncSync(fd);
    const fileBytes = stream.bytesWritten;
    closeSync(fd);
    renameSync(partial, path);
    return { ...summary, fileBytes };
  } catch (error) {
    stream.destroy();
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(partial, { force: true });
    throw error;
  }
}
