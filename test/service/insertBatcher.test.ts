import assert from 'node:assert/strict';
import type { CommandStartedEvent, Document, MongoClient } from 'mongodb';
import { createMetrics } from '../../service/src/metrics';
import type { Database } from '../../service/src/db';
import { createDataStore, type DataStore } from '../../service/src/store/dataStore';
import { InsertBatcher } from '../../service/src/store/insertBatcher';
import { HttpError, isDuplicateKey } from '../../service/src/errors';
import { dbUri, freePort, serviceDriver, uniqueDbName } from './helpers';
import { TcpProxy } from './tcp-proxy';

/** The store against the test database, with the driver's insert commands and their overlap recorded. */
describe('single-document inserts that arrive together are stored together (group commit)', function () {
  this.timeout(60_000);
  let client: MongoClient;
  let dbName: string;
  const inserts: CommandStartedEvent[] = [];
  let outstanding = 0;
  let mostOutstanding = 0;
  /** Writes to any collection but the data: a single-document POST should make none. */
  let otherWrites = 0;
  const data = () => client.db(dbName).collection('data');
  /** The documents each insert command on the data collection carried. */
  const batchSizes = () => inserts.map((event) => (event.command.documents as Document[]).length);

  const storeWith = (insertBatchesInFlight: number): DataStore => {
    const collection = (() => data()) as unknown as Database['collection']; // see serviceDriver: same types, another copy
    return createDataStore({ collection }, createMetrics(), { maxReadsInFlight: 8, maxOpenCursors: 4, cursorWaitMs: 1000, queryTimeoutMs: 10_000, idempotencyTtlSeconds: 60, insertBatchesInFlight, operationDeadlineMs: 30_000 });
  };

  before(() => {
    dbName = uniqueDbName('batcher');
    client = new (serviceDriver().MongoClient)(dbUri(), { monitorCommands: true });
    const isDataInsert = (event: { commandName: string }) => event.commandName === 'insert';
    client.on('commandStarted', (event) => {
      if (['insert', 'update', 'delete'].includes(event.commandName) && event.command[event.commandName] !== 'data') otherWrites++;
      if (!isDataInsert(event) || event.command.insert !== 'data') return;
      inserts.push(event);
      mostOutstanding = Math.max(mostOutstanding, ++outstanding);
    });
    const done = (event: { commandName: string; requestId: number }) => {
      if (isDataInsert(event) && inserts.some((started) => started.requestId === event.requestId)) outstanding--;
    };
    client.on('commandSucceeded', done);
    client.on('commandFailed', done);
  });
  beforeEach(async () => {
    await data().deleteMany({});
    inserts.length = 0;
    otherWrites = 0;
    outstanding = 0;
    mostOutstanding = 0;
  });
  after(async () => {
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('40 at once: fewer insert commands than requests, each answered with its own id, every one stored', async () => {
    const store = storeWith(4);
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, n) => store.insert([{ n }])));
    const ids = outcomes.map((outcome) => outcome.ids[0].toHexString());
    assert.equal(new Set(ids).size, 40, 'an id of its own for each');
    assert.ok(inserts.length < 40, `${inserts.length} insert commands for 40 requests`);
    assert.ok(Math.max(...batchSizes()) > 1, `batches: ${batchSizes().join(', ')}`);
    assert.equal(batchSizes().reduce((a, b) => a + b, 0), 40, 'every document sent once');
    assert.equal(otherWrites, 0, 'no write but the batches: a POST costs its share of one insert');
    // Each id names its own request's document.
    const stored = await data().find({}).toArray();
    assert.equal(stored.length, 40);
    for (const [n, id] of ids.entries()) assert.equal(stored.find((doc) => doc._id.toHexString() === id)?.n, n);
  });

  it('one after another, each goes at once, alone (nothing waits for company)', async () => {
    const store = storeWith(4);
    for (let n = 0; n < 3; n++) {
      const started = Date.now();
      await store.insert([{ n }]);
      assert.ok(Date.now() - started < 1000);
    }
    assert.deepEqual(batchSizes(), [1, 1, 1]);
  });

  it('never more than INSERT_BATCHES_IN_FLIGHT batches out at once', async () => {
    const store = storeWith(1);
    await Promise.all(Array.from({ length: 60 }, (_, n) => store.insert([{ n }])));
    assert.equal(mostOutstanding, 1, `at most one insert command at a time; batches: ${batchSizes().join(', ')}`);
    assert.ok(inserts.length < 60);
    assert.equal(await data().countDocuments(), 60);
  });

  it('a document the database refuses fails only its own request; the others of its batch are stored', async () => {
    const store = storeWith(1);
    // FerretDB refuses Infinity (code 2): the HTTP layer never lets it through, so this is the store alone.
    const settled = await Promise.allSettled(
      Array.from({ length: 11 }, (_, n) => store.insert([n === 5 ? { n, bad: Number.POSITIVE_INFINITY } : { n }])),
    );
    assert.deepEqual(settled.map((outcome) => outcome.status), settled.map((_, n) => (n === 5 ? 'rejected' : 'fulfilled')), 'only the request that sent it fails');
    const reason = (settled[5] as PromiseRejectedResult).reason as unknown;
    assert.ok(reason instanceof HttpError && reason.status === 400, String(reason));
    const carrier = inserts.find((event) => (event.command.documents as Document[]).some((doc) => doc.bad !== undefined));
    assert.ok(carrier && (carrier.command.documents as Document[]).length > 1, `it went in a batch: ${batchSizes().join(', ')}`);
    assert.equal(await data().countDocuments(), 10, 'all but the refused one');
    assert.equal(await data().countDocuments({ bad: { $exists: true } }), 0);
  });

  it('a document the BSON encoder refuses (the whole batch with it) fails only its own request: the others go again alone', async () => {
    const store = storeWith(1);
    // The HTTP layer refuses `_bsontype` keys; the store alone lets this one reach the encoder, which
    // refuses the whole insertMany for it.
    const settled = await Promise.allSettled(
      Array.from({ length: 11 }, (_, n) => store.insert([n === 5 ? { n, nested: { _bsontype: 'ObjectId' } } : { n }])),
    );
    assert.deepEqual(settled.map((outcome) => outcome.status), settled.map((_, n) => (n === 5 ? 'rejected' : 'fulfilled')), 'only the request that sent it fails');
    const reason = (settled[5] as PromiseRejectedResult).reason as unknown;
    assert.ok(reason instanceof HttpError && reason.status === 400, String(reason));
    assert.doesNotMatch((reason as Error).message, /version|7\.x/, 'no library version in what the client is told');
    assert.equal(await data().countDocuments(), 10, 'all but the refused one, each once');
  });

  it('a batch the driver leaves unsettled is answered at the deadline: outcome unknown, for each request', async () => {
    // The driver's own socket timeout far off (20 s), the store's deadline near (600 ms): only the deadline can end it.
    const proxy = TcpProxy.forUri(dbUri(), await freePort());
    await proxy.up();
    const slow = new (serviceDriver().MongoClient)(`mongodb://127.0.0.1:${proxy.port}/`, { socketTimeoutMS: 20_000 });
    try {
      const collection = (() => slow.db(dbName).collection('data')) as unknown as Database['collection'];
      const store = createDataStore({ collection }, createMetrics(), { maxReadsInFlight: 8, maxOpenCursors: 4, cursorWaitMs: 1000, queryTimeoutMs: 10_000, idempotencyTtlSeconds: 60, insertBatchesInFlight: 1, operationDeadlineMs: 600 });
      await store.insert([{ warm: true }]);
      proxy.silence();
      const started = Date.now();
      const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, n) => store.insert([{ n }])));
      const ms = Date.now() - started;
      assert.ok(ms < 5000, `answered after ${ms} ms`);
      for (const outcome of settled) {
        const reason = (outcome as PromiseRejectedResult).reason as unknown;
        assert.ok(reason instanceof HttpError && reason.status === 504, String(reason));
      }
    } finally {
      proxy.unsilence();
      await slow.close();
      await proxy.down();
    }
  });

  it('an error about the whole batch (no database) is every request\'s, and each comes back', async () => {
    const away = new (serviceDriver().MongoClient)('mongodb://127.0.0.1:1/', { serverSelectionTimeoutMS: 300 });
    try {
      const collection = (() => away.db(dbName).collection('data')) as unknown as Database['collection'];
      const store = createDataStore({ collection }, createMetrics(), { maxReadsInFlight: 8, maxOpenCursors: 4, cursorWaitMs: 1000, queryTimeoutMs: 10_000, idempotencyTtlSeconds: 60, insertBatchesInFlight: 1, operationDeadlineMs: 30_000 });
      const settled = await Promise.allSettled(Array.from({ length: 8 }, (_, n) => store.insert([{ n }])));
      assert.deepEqual(settled.map((outcome) => outcome.status), Array(8).fill('rejected'));
      for (const outcome of settled) {
        const reason = (outcome as PromiseRejectedResult).reason as HttpError;
        // Nothing was sent, so the 503 "try again" is true (and not a 504 "outcome unknown").
        assert.equal(reason.status, 503, reason.stack);
        assert.match((reason.cause as Error).name, /^Mongo(ServerSelection|TopologyClosed)Error$/, reason.stack);
      }
    } finally {
      await away.close();
    }
  });
});

/** The batcher against errors shaped as the driver throws them (a collection that only fails). */
describe('a failed batch: what each request is told', () => {
  const driver = serviceDriver();
  /** Three documents at once, their insertMany failing with `error`; each request's outcome. */
  const outcomes = async (error: Error) => {
    const failing = { insertOne: () => Promise.reject(error), insertMany: () => Promise.reject(error) };
    const batcher = new InsertBatcher(() => failing as never, createMetrics(), { maxInFlight: 1, maxDocuments: 100, deadlineMs: 5000 });
    const ObjectId = driver.ObjectId;
    return Promise.allSettled([1, 2, 3].map((n) => batcher.insert({ _id: new ObjectId(), n } as never)));
  };
  const reasons = (settled: PromiseSettledResult<void>[]) => settled.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as Error) : undefined));

  it('a write concern not met (a bulk error without write errors, all inserted) is nobody\'s "stored"', async () => {
    const error = new driver.MongoBulkWriteError({ message: 'waiting for replication timed out', code: 64 }, { insertedCount: 3 } as never);
    const settled = await outcomes(error);
    assert.deepEqual(settled.map((outcome) => outcome.status), ['rejected', 'rejected', 'rejected']);
  });

  it('a later part of a split batch failing unsent, after an earlier part was stored, is an unknown outcome, not "try again"', async () => {
    const unsent = new driver.MongoServerSelectionError('no server', {} as never);
    const settled = await outcomes(new driver.MongoBulkWriteError(unsent, { insertedCount: 2 } as never));
    for (const reason of reasons(settled)) assert.ok(reason instanceof HttpError && reason.status === 504, String(reason));
    // With nothing stored, it is the truth to say "never sent": a 503.
    const none = await outcomes(new driver.MongoBulkWriteError(unsent, { insertedCount: 0 } as never));
    for (const reason of reasons(none)) {
      assert.equal((reason as HttpError).status, 503);
      assert.equal(((reason as HttpError).cause as Error).name, 'MongoServerSelectionError');
    }
  });

  it('a wrapper without write errors is no duplicate key (a keyed bulk whose reply was lost is not "already stored")', () => {
    const lost = new driver.MongoBulkWriteError(new driver.MongoNetworkError('connection lost'), { insertedCount: 0 } as never);
    assert.equal(isDuplicateKey(lost), false);
    const duplicates = new driver.MongoBulkWriteError({ message: 'E11000', code: 11000, writeErrors: [{ index: 0, code: 11000 }] as never }, { insertedCount: 0 } as never);
    assert.equal(isDuplicateKey(duplicates), true);
  });
});
