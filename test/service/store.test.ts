import assert from 'node:assert/strict';
import type { CommandStartedEvent, Document, MongoClient } from 'mongodb';
import { createMetrics } from '../../service/src/metrics';
import type { Database } from '../../service/src/db';
import { createDataStore } from '../../service/src/store/dataStore';
import { SizeEstimate } from '../../service/src/store/sizeEstimate';
import { dbUri, serviceDriver, uniqueDbName, waitFor } from './helpers';

const MiB = 1024 * 1024;

describe('SizeEstimate: the document size a first batch is planned for', () => {
  it('is the ceiling until something is seen, the largest seen for a window after, and the ceiling again once idle', () => {
    let now = 0;
    const sizes = new SizeEstimate(MiB, 60_000, () => now);
    assert.equal(sizes.largest(), MiB, 'nothing seen: plan for the largest document a client may store');
    sizes.record(200);
    sizes.record(120);
    assert.equal(sizes.largest(), 200);
    now = 45_000; // the next half-window: still remembered
    sizes.record(90);
    assert.equal(sizes.largest(), 200);
    now = 70_000; // 200 was seen more than a window ago; 90 was not
    assert.equal(sizes.largest(), 90);
    now = 200_000;
    assert.equal(sizes.largest(), MiB, 'idle for a whole window: back to the ceiling');
    sizes.record(5 * MiB);
    assert.equal(sizes.largest(), MiB, 'never above the ceiling');
  });
});

/** The store against the test database, with the driver's commands recorded. */
describe('pages are read in one round trip once documents are known to be small', function () {
  this.timeout(60_000);
  let client: MongoClient;
  const commands: CommandStartedEvent[] = [];
  const databases: string[] = [];
  const ofKind = (name: string) => commands.filter((event) => event.commandName === name);
  /** The batch size of the last page's query (not the store's own look at its size record). */
  const firstBatchSize = () => ofKind('find').filter((event) => event.command.find === 'data').at(-1)!.command.batchSize as number;

  /** A database of its own holding `count` small documents, and a store ("a replica") on it. */
  const replicaOn = (dbName: string) => {
    const collection = (() => client.db(dbName).collection('data')) as unknown as Database['collection']; // see serviceDriver
    const store = createDataStore({ collection }, createMetrics(), { maxOpenCursors: 4, maxReadsInFlight: 8, cursorWaitMs: 1000, queryTimeoutMs: 10_000, idempotencyTtlSeconds: 60, insertBatchesInFlight: 4, operationDeadlineMs: 30_000, maxDocumentBytes: MiB });
    const page = (after?: Document['_id']) => store.readPage({ limit: 100, after, maxChars: 4 * MiB });
    return { store, page };
  };
  const smallDocuments = async (count: number) => {
    const dbName = uniqueDbName('store');
    databases.push(dbName);
    await client.db(dbName).collection('data').insertMany(Array.from({ length: count }, (_, n) => ({ n, key: `value${n}` })));
    return dbName;
  };

  before(() => {
    client = new (serviceDriver().MongoClient)(dbUri(), { monitorCommands: true });
    client.on('commandStarted', (event) => commands.push(event));
  });
  after(async () => {
    for (const dbName of databases) await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('a new process sizes its first batch for the largest documents, then learns, and answers the same page', async () => {
    const { page } = replicaOn(await smallDocuments(250));
    commands.length = 0;
    const cold = await page();
    assert.equal(firstBatchSize(), 8, 'nothing known yet: 8 MiB of 1 MiB documents');
    // The store resizes the cursor's next getMore through the driver's private `cursorOptions` (no public
    // way once a cursor has started): if a driver upgrade stops reading it, the rest comes 8 at a time.
    const getMores = ofKind('getMore').filter((event) => event.command.collection === 'data');
    assert.equal(getMores.length, 1, `the rest of the page in one more round trip (getMore batch sizes: ${getMores.map((event) => event.command.batchSize).join(', ')})`);
    assert.ok((getMores[0].command.batchSize as number) > 8, 'the getMore asks for what the store set, not the first batch\'s 8');

    commands.length = 0;
    const warm = await page();
    // (The driver asks for one more than a batchSize equal to the limit, so that the server closes the cursor.)
    assert.ok(firstBatchSize() >= 101, 'documents seen to be small: the whole page and one more');
    assert.equal(ofKind('getMore').length, 0, 'one round trip');
    assert.deepEqual(warm, cold);
    assert.equal(warm.count, 100);
    assert.deepEqual((JSON.parse(String(warm.json)) as Document[])[0], { n: 0, key: 'value0' }, 'documents come without _id');
    assert.ok(warm.next, 'a next page exists');

    const second = await page(warm.next);
    assert.deepEqual((JSON.parse(String(second.json)) as Document[])[0], { n: 100, key: 'value100' }, 'the next page starts after the last one');
  });

  it('a page held whole by its first batch is the same JSON as one taken document by document, and is cut by size alike', async () => {
    const dbName = await smallDocuments(150);
    const { store, page } = replicaOn(dbName);
    await page(); // learns that documents are small: from now on the first batch holds a whole page
    const expected = (await client.db(dbName).collection('data').find({}).sort({ _id: 1 }).toArray()).map(({ _id, ...rest }) => ({ _id, json: JSON.stringify(rest) }));

    const first = await page();
    assert.equal(String(first.json), `[${expected.slice(0, 100).map((doc) => doc.json).join(',')}]`);
    assert.equal(first.count, 100);
    assert.equal(first.next?.toHexString(), expected[99]._id.toHexString());

    // The same first batch, but the page bounded at 1000 characters: cut where the per-document path cuts.
    const fits = expected.findIndex((_, n) => expected.slice(0, n + 1).reduce((sum, doc) => sum + doc.json.length, 0) > 1000);
    const cut = await store.readPage({ limit: 100, maxChars: 1000 });
    assert.equal(String(cut.json), `[${expected.slice(0, fits).map((doc) => doc.json).join(',')}]`);
    assert.equal(cut.count, fits);
    assert.equal(cut.next?.toHexString(), expected[fits - 1]._id.toHexString());

    // The last page: all there is (50), no next.
    const rest = await page(first.next);
    assert.equal(String(rest.json), `[${expected.slice(100).map((doc) => doc.json).join(',')}]`);
    assert.equal(rest.next, undefined);
    // Exactly a page left: a full page, and no next (nothing follows it).
    const exact = await store.readPage({ limit: 50, after: first.next, maxChars: 4 * MiB });
    assert.equal(exact.count, 50);
    assert.equal(exact.next, undefined);
  });

  it('a large document stored through one replica makes every replica\'s first batches small, within seconds', async () => {
    const dbName = await smallDocuments(150);
    const writer = replicaOn(dbName);
    const reader = replicaOn(dbName);
    await reader.page();
    await reader.page();
    assert.ok(firstBatchSize() >= 101, 'the reader knows only small documents');

    // A second later, so that the large document's id (its first bytes are seconds) sorts after all the others.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await writer.store.insert([{ blob: 'x'.repeat(600_000) }], { bodyChars: 600_012 });
    commands.length = 0;
    await writer.page();
    assert.ok(firstBatchSize() <= Math.floor((8 * MiB) / 600_000), `the writer at once: first batch ${firstBatchSize()}`);
    // The reader's first page holds small documents only (the large one has the newest id): what it
    // learns, it learns from the record, which it reads again every few seconds.
    await waitFor('the reader to learn of it from the record', async () => {
      const { json } = await reader.page();
      assert.ok((JSON.parse(String(json)) as Document[]).every((doc) => JSON.stringify(doc).length < 100));
      return firstBatchSize() <= Math.floor((8 * MiB) / 600_000);
    }, 15_000, 250);
  });

  it('a bulk of small documents in a large body records the largest document, not the body', async () => {
    const dbName = await smallDocuments(150);
    const writer = replicaOn(dbName);
    const bulk = Array.from({ length: 500 }, (_, n) => ({ n, pad: 'p'.repeat(1500) }));
    await writer.store.insert(bulk, { bodyChars: JSON.stringify(bulk).length });
    const record = await client.db(dbName).collection('data_sizes').findOne({});
    assert.equal(record?.chars, 2048, 'documents of about 1.5 kB, rounded up to a power of two');
  });

  it('documents stored behind the service\'s back are planned for once a read has met them', async () => {
    const dbName = await smallDocuments(150);
    const reader = replicaOn(dbName);
    await reader.page();
    await client.db(dbName).collection('data').insertOne({ n: -1, blob: 'y'.repeat(600_000) });
    await reader.store.readPage({ limit: 300, maxChars: 64 * MiB });
    commands.length = 0;
    await reader.page();
    assert.ok(firstBatchSize() <= Math.floor((8 * MiB) / 600_000), `first batch ${firstBatchSize()}`);
  });
});
