import assert from 'node:assert/strict';
import { MongoClient, type CommandStartedEvent, type Document } from 'mongodb';
import { createMetrics } from '../../service/src/metrics';
import type { Database } from '../../service/src/db';
import { createDataStore, type DataStore } from '../../service/src/store/dataStore';
import { SizeEstimate } from '../../service/src/store/sizeEstimate';
import { dbUri, uniqueDbName } from './helpers';

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
  let store: DataStore;
  let dbName: string;
  const commands: CommandStartedEvent[] = [];
  // The tests' copy of the driver, handed to the service's code (the two copies' types differ only nominally).
  const collection = (() => client.db(dbName).collection('data')) as unknown as Database['collection'];
  const ofKind = (name: string) => commands.filter((event) => event.commandName === name);

  before(async () => {
    dbName = uniqueDbName('store');
    client = new MongoClient(dbUri(), { monitorCommands: true });
    client.on('commandStarted', (event) => commands.push(event));
    await client.db(dbName).collection('data').insertMany(Array.from({ length: 250 }, (_, n) => ({ n, key: `value${n}` })));
    store = createDataStore({ collection }, createMetrics(), { maxOpenCursors: 4, idempotencyTtlSeconds: 60, maxDocumentBytes: MiB });
  });
  after(async () => {
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  const page = (after?: Document['_id']) => store.readPage({ limit: 100, after, maxChars: 4 * MiB }, JSON.stringify);

  it('a new process sizes its first batch for the largest documents, then learns, and answers the same page', async () => {
    commands.length = 0;
    const cold = await page();
    assert.equal(ofKind('find')[0].command.batchSize, 8, 'nothing seen yet: 8 MiB of 1 MiB documents');
    assert.ok(ofKind('getMore').length >= 1, 'the rest of the page took another round trip');

    commands.length = 0;
    const warm = await page();
    // (The driver asks for one more than a batchSize equal to the limit, so that the server closes the cursor.)
    assert.ok((ofKind('find')[0].command.batchSize as number) >= 101, 'documents seen to be small: the whole page and one more');
    assert.equal(ofKind('getMore').length, 0, 'one round trip');
    assert.deepEqual(warm, cold);
    assert.equal(warm.items.length, 100);
    assert.deepEqual(JSON.parse(warm.items[0]), { n: 0, key: 'value0' }, 'documents come without _id');
    assert.ok(warm.next, 'a next page exists');

    const second = await page(warm.next);
    assert.deepEqual(JSON.parse(second.items[0]), { n: 100, key: 'value100' }, 'the next page starts after the last one');
  });

  it('a large body stored here, or a large document read, makes first batches small again', async () => {
    await store.insert([{ blob: 'x'.repeat(10) }], { bodyChars: 900_000 });
    commands.length = 0;
    await page();
    const batch = ofKind('find')[0].command.batchSize as number;
    assert.ok(batch <= Math.floor((8 * MiB) / 900_000), `first batch ${batch} is sized for 900 kB documents`);

    // Another replica's large document, met by a read: the following reads plan for it.
    const fresh = createDataStore({ collection }, createMetrics(), { maxOpenCursors: 4, idempotencyTtlSeconds: 60, maxDocumentBytes: MiB });
    await fresh.readPage({ limit: 100, maxChars: 4 * MiB }, JSON.stringify);
    await client.db(dbName).collection('data').insertOne({ n: -1, blob: 'y'.repeat(600_000) });
    await fresh.readPage({ limit: 300, maxChars: 64 * MiB }, JSON.stringify);
    commands.length = 0;
    await fresh.readPage({ limit: 100, maxChars: 4 * MiB }, JSON.stringify);
    assert.ok((ofKind('find')[0].command.batchSize as number) <= Math.floor((8 * MiB) / 600_000));
  });
});
