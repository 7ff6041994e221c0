import assert from 'node:assert/strict';
import { MongoClient, type Document } from 'mongodb';
import { startWireStub, type WireStub } from '../../devkit/wire-stub';
import { startInProcess, type InProcessService } from './helpers';

/** The benchmark's zero-cost database (devkit/wire-stub.ts) speaks enough for the driver and the service. */
describe('the instant-reply wire stub', function () {
  this.timeout(60_000);
  let stub: WireStub;
  let svc: InProcessService;
  let client: MongoClient;

  before(async () => {
    stub = await startWireStub();
    svc = await startInProcess({ MONGODB_URI: stub.uri, MONGODB_DB: 'bench' });
    client = new MongoClient(stub.uri);
  });
  after(async () => {
    await client?.close();
    await svc?.close();
    await stub?.stop();
  });

  it('answers the driver: finds in _id order, across getMore batches, with filters, limits and projections', async () => {
    const data = client.db('x').collection('data');
    const all = await data.find({}).sort({ _id: 1 }).batchSize(7).toArray();
    assert.equal(all.length, 1000);
    assert.deepEqual(Object.keys(all[0]), ['_id', 'key', 'n', 'tags', 'nested']);
    const after = await data.find({ _id: { $gt: all[499]._id } }, { projection: { _id: 0 } }).limit(3).toArray();
    assert.deepEqual(after.map((doc: Document) => doc.n), [500, 501, 502]);
    assert.equal((after[0] as Document)._id, undefined);
    assert.equal((await data.insertOne({ a: 1 })).acknowledged, true);
    assert.equal((await data.insertMany([{ a: 1 }, { a: 2 }])).insertedCount, 2);
  });

  it('serves the service: a POST is stored (as far as it knows) and pages follow their cursor', async () => {
    const post = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"k":"v"}' });
    assert.equal(post.status, 201, await post.text());
    const first = await fetch(`${svc.url}/data?limit=100`);
    assert.equal(first.status, 200);
    const page = (await first.json()) as Document[];
    assert.equal(page.length, 100);
    assert.deepEqual(page[0], { key: 'value0', n: 0, tags: ['a', 'b'], nested: { ok: true } });
    const next = first.headers.get('x-next-cursor');
    assert.ok(next);
    const second = (await (await fetch(`${svc.url}/data?limit=100&after=${next}`)).json()) as Document[];
    assert.equal(second[0].n, 100);
    assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
  });

  it('stops, and leaves nothing listening (last: the service is closed first)', async () => {
    await svc.close();
    svc = undefined as unknown as InProcessService;
    const { uri, pid } = stub;
    await stub.stop();
    assert.throws(() => process.kill(pid, 0));
    const probe = new MongoClient(uri, { serverSelectionTimeoutMS: 500 });
    await assert.rejects(probe.db('x').command({ ping: 1 }));
    await probe.close();
    await stub.stop(); // a second stop (the after hook's) is harmless
  });
});
