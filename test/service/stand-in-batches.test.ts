/**
 * The tests' FerretDB sends at most 16 MiB of documents per reply batch, as MongoDB does (FerretDB v1 fills
 * a batch by count alone; devkit/go/mongo-standin/batchcap holds back the rest): what the service's memory
 * bound relies on (MAX_OPEN_CURSORS, docs/service.md). Asked through the wire commands themselves.
 */
import assert from 'node:assert/strict';
import { BSON, MongoClient, type Document } from 'mongodb';
import { dbUri, uniqueDbName } from './helpers';

const MiB = 1024 * 1024;
const ONE_MB = 'x'.repeat(1_000_000);

describe('the tests\' FerretDB: reply batches capped at 16 MiB, as MongoDB\'s', function () {
  this.timeout(120_000);
  let client: MongoClient;
  const dbName = uniqueDbName('batches');
  const raw = { fieldsAsRaw: { firstBatch: true, nextBatch: true }, promoteLongs: false };
  type Reply = { cursor: { id: { isZero(): boolean }; firstBatch?: Buffer[]; nextBatch?: Buffer[] } };
  const run = (command: Document) => client.db(dbName).command(command, raw) as Promise<Reply>;
  const bytes = (docs: Buffer[]) => docs.reduce((sum, doc) => sum + doc.length, 0);

  before(async () => {
    client = new MongoClient(dbUri());
    const data = client.db(dbName).collection('data');
    for (let n = 0; n < 40; n += 10) await data.insertMany(Array.from({ length: 10 }, (_, i) => ({ n: n + i, blob: ONE_MB })));
    await client.db(dbName).collection('small').insertMany(Array.from({ length: 300 }, (_, n) => ({ n })));
  });
  after(async () => {
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('a find of 40 documents of 1 MB (batchSize 101) gets 16, then getMores of 16 and 8', async () => {
    const first = await run({ find: 'data', filter: {}, sort: { n: 1 }, batchSize: 101 });
    const sizes = [first.cursor.firstBatch!.length];
    assert.ok(bytes(first.cursor.firstBatch!) <= 16 * MiB, `${bytes(first.cursor.firstBatch!)} bytes`);
    assert.equal(first.cursor.id.isZero(), false, 'the cursor stays open for the rest');
    let { id } = first.cursor;
    const seen = first.cursor.firstBatch!.map(deserializeN);
    while (!id.isZero()) {
      const more = await run({ getMore: id, collection: 'data', batchSize: 101 });
      assert.ok(bytes(more.cursor.nextBatch!) <= 16 * MiB);
      sizes.push(more.cursor.nextBatch!.length);
      seen.push(...more.cursor.nextBatch!.map(deserializeN));
      id = more.cursor.id;
    }
    assert.deepEqual(sizes, [16, 16, 8]);
    assert.deepEqual(seen, Array.from({ length: 40 }, (_, n) => n), 'every document once, in order');
  });

  it('a held batch is given out by the getMore\'s batchSize too, and a killed cursor is gone', async () => {
    const first = await run({ find: 'data', filter: {}, sort: { n: 1 }, batchSize: 101 });
    const more = await run({ getMore: first.cursor.id, collection: 'data', batchSize: 5 });
    assert.equal(more.cursor.nextBatch!.length, 5);
    await run({ killCursors: 'data', cursors: [first.cursor.id] });
    await assert.rejects(run({ getMore: first.cursor.id, collection: 'data', batchSize: 5 }), /cursor/i);
  });

  it('small documents are untouched (a batch of 101), and the driver reads everything through the cap', async () => {
    const first = await run({ find: 'small', filter: {}, batchSize: 101 });
    assert.equal(first.cursor.firstBatch!.length, 101);
    assert.equal((await client.db(dbName).collection('data').find({}, { projection: { n: 1 } }).toArray()).length, 40);
    const all = await client.db(dbName).collection('data').find({}).sort({ n: 1 }).toArray();
    assert.deepEqual(all.map((doc) => doc.n), Array.from({ length: 40 }, (_, n) => n));
  });
});

/** The `n` of a raw document. */
const deserializeN = (doc: Buffer): number => (BSON.deserialize(doc) as { n: number }).n;
