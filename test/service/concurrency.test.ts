import assert from 'node:assert/strict';
import { postJson, startInProcess, uniqueDbName, type InProcessService } from './helpers';

describe('concurrency', () => {
  let svc: InProcessService;
  let dbName: string;
  before(async () => {
    dbName = uniqueDbName('concurrency');
    svc = await startInProcess({ MONGODB_DB: dbName });
  });
  after(async () => {
    await svc.raw.db(dbName).dropDatabase();
    await svc.close();
  });

  it('400 concurrent POSTs are all stored exactly once', async function () {
    this.timeout(60_000);
    const results = await Promise.all(Array.from({ length: 400 }, (_, seq) => postJson(`${svc.url}/data`, { seq })));
    assert.deepEqual(
      results.filter((r) => r.status !== 201),
      [],
      'every POST answered 201',
    );
    assert.equal(new Set(results.map((r) => r.json.id)).size, 400, '400 distinct ids');

    const docs = await svc.raw.db(dbName).collection('data').find({}, { projection: { _id: 0, seq: 1 } }).toArray();
    assert.equal(docs.length, 400);
    assert.deepEqual(
      docs.map((d) => d.seq as number).sort((a, b) => a - b),
      Array.from({ length: 400 }, (_, i) => i),
      'each seq exactly once',
    );
  });

  it('reads while writing stay well-formed', async () => {
    const writes = Promise.all(Array.from({ length: 100 }, (_, seq) => postJson(`${svc.url}/data`, { burst: seq })));
    const reads = Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetch(`${svc.url}/data?limit=50`);
        assert.equal(res.status, 200);
        const page = (await res.json()) as unknown[];
        assert.ok(Array.isArray(page) && page.length <= 50);
      }),
    );
    await Promise.all([writes, reads]);
  });
});
