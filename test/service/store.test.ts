import assert from 'node:assert/strict';
import type { CommandStartedEvent, Document, MongoClient } from 'mongodb';
import { createMetrics } from '../../service/src/metrics';
import type { Database } from '../../service/src/db';
import { createDataStore, type DocumentSource } from '../../service/src/store/dataStore';
import { withDeadline } from '../../service/src/store/deadline';
import { dbUri, serviceDriver, uniqueDbName } from './helpers';

const MiB = 1024 * 1024;

/** The store against the test database, with the driver's commands recorded. */
describe('reads: round trips, and what a stream holds at once', function () {
  this.timeout(60_000);
  let client: MongoClient;
  const commands: CommandStartedEvent[] = [];
  const databases: string[] = [];
  const onData = (name: string) => commands.filter((event) => event.commandName === name && (event.command.find ?? event.command.collection ?? event.command.killCursors) === 'data');
  /** The session a command ran in (its lsid), as hex. */
  const sessionOf = (event: CommandStartedEvent) => (event.command.lsid as { id: { toString(encoding: 'hex'): string } } | undefined)?.id.toString('hex');

  /** A store of its own (a new process, as far as reads go) on `dbName`. */
  const storeOn = (dbName: string) => {
    const collection = (() => client.db(dbName).collection('data')) as unknown as Database['collection']; // see serviceDriver
    const store = createDataStore({ collection }, createMetrics(), { maxOpenCursors: 4, maxReadsInFlight: 8, cursorWaitMs: 1000, queryTimeoutMs: 10_000, idempotencyTtlSeconds: 60, insertBatchesInFlight: 4, operationDeadlineMs: 30_000 });
    const page = (after?: Document['_id']) => store.readPage({ limit: 100, after, maxChars: 4 * MiB });
    return { store, page };
  };
  const documents = async (docs: Document[]) => {
    const dbName = uniqueDbName('store');
    databases.push(dbName);
    await client.db(dbName).collection('data').insertMany(docs);
    return dbName;
  };
  const small = (count: number) => Array.from({ length: count }, (_, n) => ({ n, key: `value${n}` }));
  /** Every document's JSON (without _id), in _id order. */
  const expected = async (dbName: string) => (await client.db(dbName).collection('data').find({}).sort({ _id: 1 }).toArray()).map(({ _id, ...rest }) => ({ _id, json: JSON.stringify(rest) }));
  /** Everything a stream hands out, one part at a time; `ended` from the last part on. */
  const drain = async (source: DocumentSource) => {
    const slices: string[] = [];
    for (let slice = await source.nextPart(); slice !== undefined; slice = await source.nextPart()) {
      // A document ends with `}`: only the part that closes the array ends with `]`.
      assert.equal(source.ended, String(slice).endsWith(']'), 'ended with the part that closes the array, and only then');
      slices.push(String(slice));
    }
    assert.ok(source.ended);
    await source.close();
    return slices;
  };

  before(() => {
    client = new (serviceDriver().MongoClient)(dbUri(), { monitorCommands: true });
    client.on('commandStarted', (event) => commands.push(event));
  });
  after(async () => {
    for (const dbName of databases) await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('a new process reads a page of 100 small documents in one round trip, and the next page after it', async () => {
    const dbName = await documents(small(250));
    const { page } = storeOn(dbName);
    commands.length = 0;
    const first = await page();
    assert.equal(onData('find').length, 1);
    // (The driver asks for one more than a batchSize equal to the limit, so that the server closes the cursor.)
    assert.ok((onData('find')[0].command.batchSize as number) >= 101, 'the whole page and one more');
    assert.equal(onData('getMore').length, 0, 'one round trip');
    assert.equal(first.count, 100);
    assert.deepEqual((JSON.parse(String(first.json)) as Document[])[0], { n: 0, key: 'value0' }, 'documents come without _id');
    assert.ok(first.next, 'a next page exists');
    const second = await page(first.next);
    assert.deepEqual((JSON.parse(String(second.json)) as Document[])[0], { n: 100, key: 'value100' }, 'the next page starts after the last one');
  });

  it('a stream of 100 small documents is one round trip and one slice', async () => {
    const dbName = await documents(small(100));
    const { store } = storeOn(dbName);
    commands.length = 0;
    const slices = await drain(await store.openStream(undefined));
    assert.equal(onData('find').length, 1);
    assert.equal(onData('getMore').length, 0, 'one round trip');
    assert.equal(onData('killCursors').length, 0, 'the server closed the cursor itself');
    assert.equal(slices.length, 1);
    assert.deepEqual(JSON.parse(slices[0]), small(100));
  });

  it('a stream of nothing is one part, `[]`; one that fills its first batch exactly is read to its end', async () => {
    const empty = await documents([{ gone: true }]);
    await client.db(empty).collection('data').deleteMany({});
    assert.deepEqual(await drain(await storeOn(empty).store.openStream(undefined)), ['[]']);
    // 101 documents: the first batch is full, the cursor still open; the getMore finds nothing more.
    const boundary = await documents(small(101));
    const slices = await drain(await storeOn(boundary).store.openStream(undefined));
    assert.deepEqual(JSON.parse(slices.join('')), small(101));
  });

  it('a stream\'s find, getMores and killCursors run in one session (a cursor belongs to the session that opened it)', async () => {
    const dbName = await documents(small(350));
    const { store } = storeOn(dbName);
    commands.length = 0;
    // Read to the end: a find and getMores, and no killCursors (the server closed the cursor).
    assert.deepEqual(JSON.parse((await drain(await store.openStream(undefined))).join('')), small(350));
    const read = [...onData('find'), ...onData('getMore')];
    assert.ok(onData('getMore').length >= 1, 'more than one batch');
    assert.equal(new Set(read.map(sessionOf)).size, 1, 'one session');
    assert.ok(sessionOf(read[0]), 'an explicit lsid');
    assert.equal(onData('killCursors').length, 0);

    // Abandoned after its first part: the cursor still open on the server is killed, in the same session.
    commands.length = 0;
    const source = await store.openStream(undefined);
    await source.nextPart();
    assert.equal(source.ended, false);
    await source.close();
    const [find] = onData('find');
    const [kill] = onData('killCursors');
    assert.ok(kill, 'killCursors was sent');
    assert.equal(sessionOf(kill), sessionOf(find));
    assert.equal(onData('getMore').length, 0);
  });

  it('a page is the same JSON as the documents one by one, and is cut by size', async () => {
    const dbName = await documents(small(150));
    const { store, page } = storeOn(dbName);
    const all = await expected(dbName);

    const first = await page();
    assert.equal(String(first.json), `[${all.slice(0, 100).map((doc) => doc.json).join(',')}]`);
    assert.equal(first.count, 100);
    assert.equal(first.next?.toHexString(), all[99]._id.toHexString());

    // The same first batch, but the page bounded at 1000 characters: the documents that fit, then a next cursor.
    const fits = all.findIndex((_, n) => all.slice(0, n + 1).reduce((sum, doc) => sum + doc.json.length, 0) > 1000);
    const cut = await store.readPage({ limit: 100, maxChars: 1000 });
    assert.equal(String(cut.json), `[${all.slice(0, fits).map((doc) => doc.json).join(',')}]`);
    assert.equal(cut.count, fits);
    assert.equal(cut.next?.toHexString(), all[fits - 1]._id.toHexString());

    // The last page: all there is (50), no next.
    const rest = await page(first.next);
    assert.equal(String(rest.json), `[${all.slice(100).map((doc) => doc.json).join(',')}]`);
    assert.equal(rest.next, undefined);
    // Exactly a page left: a full page, and no next (nothing follows it).
    const exact = await store.readPage({ limit: 50, after: first.next, maxChars: 4 * MiB });
    assert.equal(exact.count, 50);
    assert.equal(exact.next, undefined);
  });

  it('a stream of large documents is written out a slice at a time, not a batch at a time', async () => {
    const blob = 'y'.repeat(300_000);
    const dbName = await documents(Array.from({ length: 12 }, (_, n) => ({ n, blob })));
    const { store } = storeOn(dbName);
    const slices = await drain(await store.openStream(undefined));
    // 3.6 MB in the cursor's batch, but at most 64 KiB and one document as JSON at once.
    assert.ok(slices.length >= 6, `${slices.length} slices`);
    assert.ok(slices.every((slice) => slice.length <= 64 * 1024 + blob.length + 100), `slices of ${slices.map((slice) => slice.length).join(', ')}`);
    assert.equal(slices.join(''), `[${(await expected(dbName)).map((doc) => doc.json).join(',')}]`);
  });
});

describe('withDeadline: a time limit on every database operation', () => {
  it('keeps the options and aborts at the deadline, as a timeout', async () => {
    const started = Date.now();
    const options = withDeadline(300, { ordered: false }) as { ordered: boolean; signal: AbortSignal };
    assert.equal(options.ordered, false);
    const aborted = await new Promise<number>((resolve) => options.signal.addEventListener('abort', () => resolve(Date.now() - started)));
    assert.ok(aborted >= 295 && aborted < 1000, `aborted after ${aborted} ms`);
    assert.equal((options.signal.reason as Error).name, 'TimeoutError');
  });
});
