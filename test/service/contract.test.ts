import assert from 'node:assert/strict';
import { postJson, startInProcess, uniqueDbName, type InProcessService } from './helpers';

describe('service contract (the guide\'s API over real HTTP on a real database)', () => {
  let svc: InProcessService;
  let dbName: string;

  before(async () => {
    dbName = uniqueDbName('contract');
    svc = await startInProcess({ MONGODB_DB: dbName });
  });
  after(async () => {
    await svc.raw.db(dbName).dropDatabase();
    await svc.close();
  });
  beforeEach(async () => {
    await svc.raw.db(dbName).collection('data').deleteMany({});
  });

  const stored = () => svc.raw.db(dbName).collection('data').find({}, { projection: { _id: 0 } }).toArray();

  it('GET / answers the welcome line with the current time, as the guide shows', async () => {
    const before = Date.now();
    const res = await fetch(`${svc.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const match = /^Welcome to the Flask app! The current time is: (\S+)$/.exec(text);
    assert.ok(match, `unexpected body: ${text}`);
    assert.ok(Math.abs(Date.parse(match[1]) - before) < 5000, 'time is current');
  });

  it('POST /data stores a JSON object once and answers 201 with its id', async () => {
    const { status, json } = await postJson(`${svc.url}/data`, { key: 'value' });
    assert.equal(status, 201);
    assert.equal(json.status, 'Data inserted');
    assert.match(String(json.id), /^[0-9a-f]{24}$/);
    assert.deepEqual(await stored(), [{ key: 'value' }]);
  });

  it('POST /data with an array of objects stores them all in one go', async () => {
    const { status, json } = await postJson(`${svc.url}/data`, [{ n: 1 }, { n: 2 }, { n: 3, nested: { ok: [1, 2] } }]);
    assert.equal(status, 201);
    assert.equal(json.count, 3);
    assert.equal((json.ids as string[]).length, 3);
    assert.deepEqual(await stored(), [{ n: 1 }, { n: 2 }, { n: 3, nested: { ok: [1, 2] } }]);
  });

  it('GET /data returns every document, without _id, as a streamed JSON array', async () => {
    await postJson(`${svc.url}/data`, [{ a: 1 }, { b: 'two' }, { c: [true, null] }]);
    const res = await fetch(`${svc.url}/data`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked', 'body is streamed, not buffered');
    assert.equal(res.headers.get('x-next-cursor'), null);
    // Natural order, as the guide's app had it (no promise of order without ?limit).
    const docs = (await res.json()) as object[];
    const byText = (list: object[]) => list.map((doc) => JSON.stringify(doc)).sort();
    assert.deepEqual(byText(docs), byText([{ a: 1 }, { b: 'two' }, { c: [true, null] }]));
  });

  it('GET /data streams a large collection completely (more than one cursor batch and chunk)', async () => {
    const docs = Array.from({ length: 3000 }, (_, i) => ({ i, text: 'x'.repeat(20) }));
    await svc.raw.db(dbName).collection('data').insertMany(docs.map((doc) => ({ ...doc })));
    const res = await fetch(`${svc.url}/data`);
    const body = (await res.json()) as Array<{ i: number }>;
    assert.equal(body.length, 3000);
    assert.deepEqual(body.map((doc) => doc.i).sort((a, b) => a - b), docs.map((doc) => doc.i));
  });

  it('GET /data on an empty collection is []', async () => {
    const res = await fetch(`${svc.url}/data`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), []);
  });

  it('GET /data?limit=N pages through everything with X-Next-Cursor and Link, each document once', async () => {
    await postJson(`${svc.url}/data`, Array.from({ length: 25 }, (_, i) => ({ i })));
    const seen: number[] = [];
    let next: string | null = `${svc.url}/data?limit=10`;
    const pageSizes: number[] = [];
    while (next) {
      const res: Response = await fetch(next);
      assert.equal(res.status, 200);
      const page = (await res.json()) as Array<{ i: number }>;
      pageSizes.push(page.length);
      seen.push(...page.map((doc) => doc.i));
      const cursor = res.headers.get('x-next-cursor');
      const link = res.headers.get('link');
      if (cursor) {
        assert.equal(link, `</data?limit=10&after=${cursor}>; rel="next"`);
        next = `${svc.url}/data?limit=10&after=${cursor}`;
      } else {
        assert.equal(link, null);
        next = null;
      }
    }
    assert.deepEqual(pageSizes, [10, 10, 5]);
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i));
  });

  it('a full last page has no next cursor', async () => {
    await postJson(`${svc.url}/data`, Array.from({ length: 4 }, (_, i) => ({ i })));
    const first = await fetch(`${svc.url}/data?limit=2`);
    const cursor = first.headers.get('x-next-cursor');
    assert.ok(cursor);
    const second = await fetch(`${svc.url}/data?limit=2&after=${cursor}`);
    assert.deepEqual(await second.json(), [{ i: 2 }, { i: 3 }]);
    assert.equal(second.headers.get('x-next-cursor'), null);
  });

  for (const [query, reason] of [
    ['limit=0', /limit must be a whole number from 1 to 1000/],
    ['limit=1001', /limit must be a whole number from 1 to 1000/],
    ['limit=abc', /limit must be a whole number/],
    ['limit=-5', /limit must be a whole number/],
    ['limit=2.5', /limit must be a whole number/],
    ['limit=', /limit must be a whole number/],
    ['limit=1&limit=2', /more than once/],
    ['after=nothex', /after must be a cursor/],
    ['after=%24gt', /after must be a cursor/],
    ['sort=-1', /unknown query parameter "sort"/],
  ] as const) {
    it(`GET /data?${query} is a 400 JSON error`, async () => {
      const res = await fetch(`${svc.url}/data?${query}`);
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { error: string }).error, reason);
    });
  }

  it('unknown routes are 404 JSON, wrong methods 405 JSON with Allow', async () => {
    const notFound = await fetch(`${svc.url}/nope`);
    assert.equal(notFound.status, 404);
    assert.deepEqual(await notFound.json(), { error: 'no route for GET /nope' });

    // The guide's own curl example POSTs to / by mistake: say where to go, in JSON.
    const wrong = await fetch(`${svc.url}/`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"key":"value"}' });
    assert.equal(wrong.status, 405);
    assert.match(wrong.headers.get('allow') ?? '', /GET/);
    assert.match(((await wrong.json()) as { error: string }).error, /not allowed/);

    const del = await fetch(`${svc.url}/data`, { method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.match(del.headers.get('allow') ?? '', /POST/);
  });

  it('/healthz and /readyz answer 200 while the database is up', async () => {
    const health = await fetch(`${svc.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
  });

  it('/metrics exposes request counts and latency by route and status, and database latency', async () => {
    await postJson(`${svc.url}/data`, { m: 1 });
    await fetch(`${svc.url}/data?limit=oops`);
    await (await fetch(`${svc.url}/data?limit=5`)).text();
    const res = await fetch(`${svc.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /http_requests_total\{method="POST",route="\/data",status="201"\} [1-9]/);
    assert.match(text, /http_requests_total\{method="GET",route="\/data",status="400"\} [1-9]/);
    assert.match(text, /http_request_duration_seconds_bucket\{le="0\.1",method="POST",route="\/data",status="201"\}/);
    assert.match(text, /db_operation_duration_seconds_count\{operation="insertOne",outcome="ok"\} [1-9]/);
    assert.match(text, /db_operation_duration_seconds_count\{operation="findPage",outcome="ok"\} [1-9]/);
    assert.match(text, /process_resident_memory_bytes/);
  });

  it('every response carries a request id (the caller\'s when it sends a sane one)', async () => {
    const mine = await fetch(`${svc.url}/healthz`, { headers: { 'X-Request-Id': 'abc-123' } });
    assert.equal(mine.headers.get('x-request-id'), 'abc-123');
    const hostile = await fetch(`${svc.url}/healthz`, { headers: { 'X-Request-Id': 'a b<script>' } });
    assert.match(hostile.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('CORS: any origin by default, preflight answered with the allowed methods', async () => {
    const simple = await fetch(`${svc.url}/data`, { headers: { Origin: 'http://example.test' } });
    assert.equal(simple.headers.get('access-control-allow-origin'), '*');
    assert.match(simple.headers.get('access-control-expose-headers') ?? '', /X-Next-Cursor/);

    const preflight = await fetch(`${svc.url}/data`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /content-type/i);

    const errorResponse = await fetch(`${svc.url}/nope`, { headers: { Origin: 'http://example.test' } });
    assert.equal(errorResponse.status, 404);
    assert.equal(errorResponse.headers.get('access-control-allow-origin'), '*', 'errors are readable cross-origin too');
  });
});

describe('CORS with an allow-list (CORS_ORIGINS)', () => {
  let svc: InProcessService;
  before(async () => {
    svc = await startInProcess({ CORS_ORIGINS: 'https://app.example.com, http://localhost:3000' });
  });
  after(() => svc.close());

  it('echoes an allowed origin and gives others nothing', async () => {
    const allowed = await fetch(`${svc.url}/healthz`, { headers: { Origin: 'http://localhost:3000' } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://localhost:3000');
    assert.match(allowed.headers.get('vary') ?? '', /Origin/);
    const other = await fetch(`${svc.url}/healthz`, { headers: { Origin: 'https://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });
});
