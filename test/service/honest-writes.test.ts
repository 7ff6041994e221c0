import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { HttpError, writeError } from '../../service/src/errors';
import { dbUri, freePort, rawRequest, serviceDriver, spawnService, startInProcess, uniqueDbName, waitFor, type InProcessService, type SpawnedService } from './helpers';
import { TcpProxy } from './tcp-proxy';

/** Every answer tells the truth about what was stored, and memory per request is bounded. */
describe('honest answers about what was stored', function () {
  this.timeout(60_000);
  let svc: InProcessService;
  let dbName: string;
  const data = () => svc.raw.db(dbName).collection('data');

  before(async () => {
    dbName = uniqueDbName('honest');
    svc = await startInProcess({ MONGODB_DB: dbName, MAX_BULK_DOCUMENTS: '50', MAX_VALUES_PER_DOCUMENT: '100' });
  });
  after(async () => {
    await svc.raw.db(dbName).dropDatabase();
    await svc.close();
  });
  beforeEach(() => data().deleteMany({}));

  const post = (body: string, headers: Record<string, string> = {}) =>
    rawRequest(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers }, body });
  const errorOf = (res: { body: string }) => (JSON.parse(res.body) as { error: string }).error;

  it('a bulk with a non-finite number (1e400) is a 400 naming it, and nothing is stored', async () => {
    const res = await post('[{"a":1},{"b":{"c":[1,1e400]}},{"d":3}]');
    assert.equal(res.status, 400, res.body);
    assert.match(errorOf(res), /body\[1\]\.b\.c\[1\] is a number too large to store/);
    assert.equal(await data().countDocuments(), 0);
  });

  it('keys that collide once encoded (unpaired surrogates) and unpaired surrogates in text are 400s, nothing stored', async () => {
    const keys = await post('[{"a":1},{"\\ud800":1,"\\udfff":2}]');
    assert.equal(keys.status, 400, keys.body);
    assert.match(errorOf(keys), /body\[1\].*unpaired UTF-16 surrogate/);
    const text = await post('{"s":"ok \\ud83d then"}');
    assert.equal(text.status, 400, text.body);
    assert.match(errorOf(text), /body\.s holds an unpaired UTF-16 surrogate/);
    assert.equal(await data().countDocuments(), 0);
  });

  it('when the database itself refuses an element, the elements before it are taken back (store level)', async () => {
    // Bypasses HTTP validation on purpose: FerretDB refuses Infinity (code 2) after storing element 0.
    await assert.rejects(
      svc.app.store.insert([{ a: 1 }, { b: Number.POSITIVE_INFINITY }, { c: 3 }]),
      (error: unknown) => error instanceof HttpError && error.status === 400,
    );
    assert.equal(await data().countDocuments(), 0, 'nothing of the batch is left');
  });

  it('more documents than MAX_BULK_DOCUMENTS, or more values than MAX_VALUES_PER_DOCUMENT, is a 413 naming the limit', async () => {
    const many = await post(JSON.stringify(Array.from({ length: 51 }, (_, i) => ({ i }))));
    assert.equal(many.status, 413, many.body);
    assert.match(errorOf(many), /51 documents, more than 50 .*MAX_BULK_DOCUMENTS/);
    const wide = await post(JSON.stringify({ list: Array.from({ length: 150 }, (_, i) => i) }));
    assert.equal(wide.status, 413, wide.body);
    assert.match(errorOf(wide), /more than 100 keys and values .*MAX_VALUES_PER_DOCUMENT/);
    assert.equal(await data().countDocuments(), 0);
  });

  it('a compressed body (Content-Encoding) is refused with 415, never stored as if plain', async () => {
    const res = await post('{"looks":"plain"}', { 'Content-Encoding': 'gzip' });
    assert.equal(res.status, 415, res.body);
    assert.match(errorOf(res), /Content-Encoding "gzip" is not supported/);
    assert.equal(await data().countDocuments(), 0);
  });

  it('Idempotency-Key: the same key and body give the same answer and one stored copy; another body is a 422', async () => {
    const body = JSON.stringify([{ order: 1 }, { order: 2 }]);
    const first = await post(body, { 'Idempotency-Key': 'order-42' });
    assert.equal(first.status, 201, first.body);
    const again = await post(body, { 'Idempotency-Key': 'order-42' });
    assert.equal(again.status, 201, again.body);
    assert.deepEqual(JSON.parse(again.body), JSON.parse(first.body), 'the same answer, the same ids');
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(await data().countDocuments(), 2, 'stored once');

    const other = await post(JSON.stringify([{ order: 3 }]), { 'Idempotency-Key': 'order-42' });
    assert.equal(other.status, 422, other.body);
    assert.match(errorOf(other), /already used with a different request body/);
    assert.equal(await data().countDocuments(), 2);

    const bad = await post(body, { 'Idempotency-Key': 'spaces are not allowed' });
    assert.equal(bad.status, 400);
    assert.match(errorOf(bad), /Idempotency-Key must be/);
  });

  it('Idempotency-Key: concurrent retries of one request store it once', async () => {
    const body = JSON.stringify({ payment: 'abc' });
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(body, { 'Idempotency-Key': 'pay-abc' })));
    assert.deepEqual(answers.map((a) => a.status), Array(10).fill(201));
    assert.equal(new Set(answers.map((a) => (JSON.parse(a.body) as { id: string }).id)).size, 1);
    assert.equal(await data().countDocuments(), 1);
  });
});

describe('a write whose outcome is unknown', function () {
  this.timeout(60_000);
  let proxy: TcpProxy;
  let svc: SpawnedService;
  let dbName: string;
  let raw: MongoClient;

  before(async () => {
    dbName = uniqueDbName('unknown');
    proxy = TcpProxy.forUri(dbUri(), await freePort());
    await proxy.up();
    raw = new MongoClient(dbUri());
    svc = await spawnService({ MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/`, MONGODB_DB: dbName, MONGODB_OPERATION_TIMEOUT_MS: '1500' });
  });
  after(async () => {
    svc.kill('SIGKILL');
    await proxy.down();
    await raw.db(dbName).dropDatabase();
    await raw.close();
  });

  it('is a 504 saying so (not a 503 "try again"), and a retry with the same Idempotency-Key stores it exactly once', async () => {
    const body = JSON.stringify({ transfer: 7 });
    const send = () =>
      fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'transfer-7' }, body });
    // Warm the connection, then let the database apply commands while its replies are lost.
    // (Several connections open and the key index made, so the lost write goes out on an established one;
    // a connection still shaking hands when replies stop has sent nothing, and that is a truthful 503.)
    const warm = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'warm-up' }, body: '{"warm":1}' });
    assert.equal(warm.status, 201);
    const pages = await Promise.all(Array.from({ length: 6 }, () => fetch(`${svc.url}/data?limit=1`)));
    assert.deepEqual(pages.map((page) => page.status), Array(6).fill(200));
    proxy.silence();
    const lost = await send();
    assert.equal(lost.status, 504, svc.logs.filter((line) => line.includes('"level":"error"')).join('\n').slice(0, 3000));
    assert.match(((await lost.json()) as { error: string }).error, /may or may not have been stored/);
    proxy.unsilence();

    let retried = await send();
    for (let attempt = 0; retried.status === 503 && attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      retried = await send();
    }
    assert.equal(retried.status, 201, await retried.clone().text());
    assert.equal(await raw.db(dbName).collection('data').countDocuments({ transfer: 7 }), 1, 'stored exactly once');
  });

  it('a bulk POST whose answer is lost is a 504 as well (insertMany wraps the driver\'s error in one of its own)', async () => {
    const pages = await Promise.all(Array.from({ length: 6 }, () => fetch(`${svc.url}/data?limit=1`)));
    assert.deepEqual(pages.map((page) => page.status), Array(6).fill(200));
    proxy.silence();
    try {
      const lost = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '[{"bulk":1},{"bulk":2}]' });
      assert.equal(lost.status, 504, await lost.clone().text());
    } finally {
      proxy.unsilence();
    }
  });

  it('a connection that timed out in its handshake carried nothing: 503, not 504 (the driver\'s beforeHandshake, read by errors.ts)', () => {
    const { MongoNetworkTimeoutError } = serviceDriver();
    // The driver's own Connection builds this error when a socket times out before its hello is answered.
    assert.equal(writeError(new MongoNetworkTimeoutError('connection timed out', { beforeHandshake: true })).status, 503);
    assert.equal(writeError(new MongoNetworkTimeoutError('connection timed out', { beforeHandshake: false })).status, 504);
  });

  it('single POSTs that went together in one batch are each a 504 when its answer is lost (they were stored)', async () => {
    // Connections up first (see above), so that the batch goes out on an established one.
    const warm = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"warm":2}' });
    assert.equal(warm.status, 201);
    const pages = await Promise.all(Array.from({ length: 6 }, () => fetch(`${svc.url}/data?limit=1`)));
    assert.deepEqual(pages.map((page) => page.status), Array(6).fill(200));
    proxy.silence();
    try {
      // A bound on each answer, so that one never given shows as such (with the service's log), not as the test's timeout.
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, n) =>
          fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ batched: n }), signal: AbortSignal.timeout(20_000) }).then(
            (answer) => answer.status,
            (error: Error) => error.name,
          ),
        ),
      );
      assert.deepEqual(answers, Array(8).fill(504), svc.logs.slice(-60).join('\n'));
    } finally {
      proxy.unsilence();
    }
    // The database did apply them: a 503 "try again" would have invited a second copy of each.
    await waitFor('the lost batch to be seen stored', async () => (await raw.db(dbName).collection('data').countDocuments({ batched: { $exists: true } })) === 8);
  });
});

describe('pages bounded by size as well as count (PAGE_MAX_BYTES)', function () {
  this.timeout(30_000);
  let svc: InProcessService;
  let dbName: string;
  before(async () => {
    dbName = uniqueDbName('pagebytes');
    svc = await startInProcess({ MONGODB_DB: dbName, PAGE_MAX_BYTES: '1024' });
  });
  after(async () => {
    await svc.raw.db(dbName).dropDatabase();
    await svc.close();
  });

  it('a page ends before it passes the size, with a next cursor; a document larger than a page still comes, alone', async () => {
    const docs = [...Array.from({ length: 10 }, (_, i) => ({ i, pad: 'p'.repeat(300) })), { i: 10, pad: 'q'.repeat(3000) }, { i: 11 }];
    await svc.raw.db(dbName).collection('data').insertMany(docs.map((doc) => ({ ...doc })));
    const sizes: number[] = [];
    const seen: number[] = [];
    let next: string | null = `${svc.url}/data?limit=100`;
    while (next) {
      const res: Response = await fetch(next);
      assert.equal(res.status, 200);
      const text = await res.text();
      const page = JSON.parse(text) as Array<{ i: number }>;
      sizes.push(page.length);
      seen.push(...page.map((doc) => doc.i));
      if (page.length > 1) assert.ok(text.length <= 1024 + 2, `page of ${text.length} characters`);
      const cursor = res.headers.get('x-next-cursor');
      next = cursor ? `${svc.url}/data?limit=100&after=${cursor}` : null;
    }
    assert.deepEqual(seen, Array.from({ length: 12 }, (_, i) => i), 'every document once, in order');
    assert.deepEqual(sizes, [3, 3, 3, 1, 1, 1]);
  });
});
