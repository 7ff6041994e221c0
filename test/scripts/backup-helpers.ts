/**
 * Shared by the backup/restore tests: the database (found or started as test/service does, with
 * devkit/database.ts), the two tools run as the user runs them, and ways to look at a database exactly.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Int32, Long, MongoClient, ObjectId, Double, Binary, UUID, type Db } from 'mongodb';
import { startTestDatabase, type TestDatabase } from '../../devkit/database';
import { frames, LineTally } from '../../admin/src/backup/archive';

export const ROOT = path.resolve(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

let shared: Promise<TestDatabase> | undefined;
let users = 0;

/** One database for all backup test files of a run; stopped when the last one lets go. */
export async function acquireDatabase(): Promise<TestDatabase> {
  users += 1;
  shared ??= startTestDatabase((line) => console.log(`  [db] ${line}`));
  return shared;
}

export async function releaseDatabase(): Promise<void> {
  users -= 1;
  if (users === 0 && shared) {
    const db = await shared;
    shared = undefined;
    await db.stop();
  }
}

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run backup|restore -- …` as a user runs it (tsx directly: the same program, without npm's start-up). */
export function runTool(tool: 'backup' | 'restore', args: string[], env: Record<string, string | undefined>, viaNpm = false): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const [command, argv] = viaNpm ? ['npm', ['run', '-s', tool, '--', ...args]] : [TSX, [path.join(ROOT, 'scripts', `${tool}.ts`), ...args]];
    const child = spawn(command as string, argv as string[], { cwd: ROOT, env: { ...process.env, MONGODB_URI: undefined, MONGODB_DB: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Everything a database holds, exactly: per collection its documents as raw BSON (hex, by _id) and its
 * indexes (without the server's bookkeeping). Two equal snapshots are the same data, byte for byte.
 */
export async function snapshot(db: Db): Promise<Record<string, { documents: string[]; indexes: unknown[] }>> {
  const result: Record<string, { documents: string[]; indexes: unknown[] }> = {};
  const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();
  for (const name of names) {
    const raw = (await db.collection(name).find({}, { raw: true, sort: { _id: 1 } } as object).toArray()) as unknown as Buffer[];
    const indexes = (await db.collection(name).listIndexes().toArray()).map(({ v: _v, ns: _ns, ...rest }) => rest).sort((a, b) => String(a.name).localeCompare(String(b.name)));
    result[name] = { documents: raw.map((buffer) => Buffer.from(buffer).toString('hex')), indexes };
  }
  return result;
}

export async function withClient<T>(uri: string, work: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

/**
 * Documents with every BSON type the issue lists that FerretDB v1 keeps (Maps: their field order is
 * part of the test): Int32, Int64 past 2^53, Double, dates to the millisecond, ObjectId, binary (generic,
 * UUID, user-defined), nested documents and arrays, unicode, an empty key and numeric keys.
 * (-0.0 and Decimal128, which FerretDB does not keep, are tested apart.)
 */
export function everyTypeDocuments(): Array<Map<string, unknown>> {
  return [
    new Map<string, unknown>([
      ['_id', new ObjectId('65a1b2c3d4e5f60718293a4b')],
      ['int32', new Int32(-2147483648)],
      ['int64', Long.fromString('9007199254740993')],
      ['int64neg', Long.fromString('-9223372036854775808')],
      ['double', new Double(0.1)],
      ['doubleWhole', new Double(3)],
      ['date', new Date('2024-02-29T23:59:59.999Z')],
      ['dateOld', new Date(-86_400_001)],
      ['oid', new ObjectId('000000000000000000000001')],
      ['binary', new Binary(Buffer.from([0, 1, 2, 253, 254, 255]), 0)],
      ['uuid', new UUID('9c0e4f7a-2b6d-4e1a-8c3f-5d7b9a1e2f30')],
      ['userBinary', new Binary(Buffer.from('opaque'), 0x80)],
      ['nested', new Map<string, unknown>([['b', new Map([['c', [1, 'two', new Map([['3', true]])]]])], ['a', null]])],
      ['unicode', 'Grüße, 日本語, עברית, emoji 🎉, 𝄞, and a "quote" \\ with\nnewline\ttab \u2028'],
      ['', 'the empty key'],
      ['10', 'numeric key ten'],
      ['2', 'numeric key two'],
      ['emptyDocument', new Map()],
      ['emptyArray', []],
      ['bool', false],
    ]),
    new Map<string, unknown>([['_id', 'a string id'], ['z', 1], ['1', 'one'], ['a', [new Map<string, unknown>([['9', 9], ['', '']]), 'x']]]),
    new Map<string, unknown>([['_id', new Int32(42)], ['long', Long.fromNumber(2 ** 53)], ['big', Long.fromString('9223372036854775807')]]),
  ];
}

/** Gzip'd file content, uncompressed into lines and back (to alter an archive, as an attacker or a bad disk would). */
export function editArchive(file: string, edit: (lines: string[]) => string[], out = file): void {
  const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
  writeFileSync(out, gzipSync(Buffer.from(edit(lines).join('\n'))));
}

/**
 * An archive written by hand from document lines, with every count and hash right: what a backup of such
 * a database would be. For cases a real database cannot produce (a duplicate _id, a value it cannot keep).
 */
export function makeArchive(file: string, database: string, collections: Array<{ name: string; lines: string[]; indexes?: string[] }>): void {
  const out: string[] = [frames.header({ database, createdAt: new Date().toISOString() })];
  let documents = 0;
  let bytes = 0;
  for (const collection of collections) {
    out.push(frames.start(collection.name, '{}', collection.indexes ?? ['{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}']));
    const tally = new LineTally();
    for (const line of collection.lines) {
      tally.add(line);
      out.push(line);
    }
    const totals = tally.totals();
    documents += totals.documents;
    bytes += totals.bytes;
    out.push(frames.done(collection.name, totals));
  }
  const sha256 = createHash('sha256')
    .update(out.map((line) => `${line}\n`).join(''))
    .digest('hex');
  out.push(frames.end({ collections: collections.length, documents, bytes, sha256 }));
  writeFileSync(file, gzipSync(Buffer.from(`${out.join('\n')}\n`)));
}

/** One line of stderr and no stack trace. */
export function isOneLineError(stderr: string): boolean {
  const lines = stderr.trim().split('\n');
  return lines.length === 1 && lines[0].length > 0 && !/\n\s+at /.test(stderr);
}
