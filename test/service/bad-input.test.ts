import assert from 'node:assert/strict';
import { rawRequest, startInProcess, uniqueDbName, type InProcessService } from './helpers';

/** Every bad request gets a clear 4xx JSON error, stores nothing, and the process keeps serving. */
describe('bad input', () => {
  let svc: InProcessService;
  let dbName: string;
  const count = () => svc.raw.db(dbName).collection('data').countDocuments();

  before(async () => {
    dbName = uniqueDbName('badinput');
    svc = await startInProcess({ MONGODB_DB: dbName, BODY_LIMIT_BYTES: String(64 * 1024) });
  });
  after(async () => {
    await svc.raw.db(dbName).dropDatabase();
    await svc.close();
  });
  afterEach(async () => {
    assert.equal(await count(), 0, 'nothing was stored');
    const health = await fetch(`${svc.url}/healthz`);
    assert.equal(health.status, 200, 'the process still serves');
  });

  const post = (body: string | Buffer, headers: Record<string, string | number> = { 'Content-Type': 'application/json' }) =>
    rawRequest(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body), ...headers }, body });

  const expectError = (res: { status: number; headers: Record<string, unknown>; body: string }, status: number, message: RegExp) => {
    assert.equal(res.status, status, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const parsed = JSON.parse(res.body) as { error: string };
    assert.deepEqual(Object.keys(parsed), ['error']);
    assert.match(parsed.error, message);
  };

  it('malformed JSON → 400 naming the problem', async () => {
    expectError(await post('{"key": '), 400, /malformed JSON/);
    expectError(await post("{'single': 'quotes'}"), 400, /malformed JSON/);
  });

  for (const [label, body] of [
    ['a number', '42'],
    ['a string', '"text"'],
    ['true', 'true'],
    ['null', 'null'],
  ] as const) {
    it(`a JSON scalar (${label}) → 400`, async () => {
      expectError(await post(body), 400, /must be a JSON object/);
    });
  }

  it('an empty body → 400, not a stored {}', async () => {
    expectError(await post(''), 400, /empty/);
    expectError(await post('   \n'), 400, /empty/);
    expectError(await rawRequest(`${svc.url}/data`, { method: 'POST' }), 400, /empty/);
  });

  it('an array with one non-object → 400 and none of it stored', async () => {
    expectError(await post(JSON.stringify([{ ok: 1 }, { ok: 2 }, 3])), 400, /body\[2\] must be a JSON object, got a number/);
    expectError(await post(JSON.stringify([{ ok: 1 }, [{ nested: 'array' }]])), 400, /body\[1\] must be a JSON object, got an array/);
    expectError(await post('[]'), 400, /empty array/);
  });

  it('keys starting with $ at any depth → 400 (operator injection)', async () => {
    expectError(await post(JSON.stringify({ $where: 'sleep(1000)' })), 400, /"\$where".*must not start with "\$"/);
    expectError(await post(JSON.stringify({ a: { b: { $gt: 1 } } })), 400, /at body\.a\.b must not start/);
    expectError(await post(JSON.stringify({ list: [{ ok: 1 }, { $set: {} }] })), 400, /at body\.list\[1\]/);
    expectError(await post(JSON.stringify([{ fine: true }, { deep: { $inc: 1 } }])), 400, /body\[1\]\.deep/);
  });

  it('keys containing "." → 400', async () => {
    expectError(await post(JSON.stringify({ 'a.b': 1 })), 400, /must not contain "\."/);
    expectError(await post(JSON.stringify({ outer: { 'x.y': 1 } })), 400, /must not contain "\."/);
  });

  it('a client-chosen _id → 400 (ids belong to the server)', async () => {
    expectError(await post(JSON.stringify({ _id: 'mine', v: 1 })), 400, /_id is not allowed/);
  });

  it('absurd nesting → 400, not a crash', async () => {
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    expectError(await post(deep), 400, /nested deeper than/);
  });

  it('a body over the limit → 413, whether Content-Length says so or the stream runs over', async () => {
    const big = JSON.stringify({ blob: 'x'.repeat(70 * 1024) });
    expectError(await post(big), 413, /exceeds the limit of 65536 bytes/);
    const chunked = await rawRequest(`${svc.url}/data`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      chunks: ['{"blob":"', 'y'.repeat(40 * 1024), 'y'.repeat(40 * 1024), '"}'],
    });
    expectError(chunked, 413, /exceeds the limit/);
  });

  it('a content type other than JSON → 415', async () => {
    expectError(await post('{"key":"value"}', { 'Content-Type': 'text/plain' }), 415, /application\/json/);
    expectError(await post('key=value', { 'Content-Type': 'application/x-www-form-urlencoded' }), 415, /application\/json/);
    expectError(await post('{"key":"value"}', {}), 415, /application\/json/);
    expectError(await post('{"key":"value"}', { 'Content-Type': 'application/json; charset=latin1' }), 415, /charset/);
  });

  it('JSON with a +json suffix and an explicit UTF-8 charset is accepted', async () => {
    const res = await post('{"ünï":"cødé"}', { 'Content-Type': 'application/vnd.api+json; charset=utf-8' });
    assert.equal(res.status, 201, res.body);
    const docs = await svc.raw.db(dbName).collection('data').find({}, { projection: { _id: 0 } }).toArray();
    assert.deepEqual(docs, [{ ünï: 'cødé' }]);
    await svc.raw.db(dbName).collection('data').deleteMany({});
  });

  it('the content types clients send are told apart exactly (quoted charset, case, spacing, and near misses)', async () => {
    for (const type of ['APPLICATION/JSON', 'application/json;charset="UTF-8"', 'application/json ; charset=utf8']) {
      const res = await post('{"k":1}', { 'Content-Type': type });
      assert.equal(res.status, 201, `${type}: ${res.body}`);
      await svc.raw.db(dbName).collection('data').deleteMany({});
    }
    for (const type of ['application/jsonx', 'application/json-patch', 'text/json']) {
      expectError(await post('{"k":1}', { 'Content-Type': type }), 415, /application\/json/);
    }
    expectError(await post('{"k":1}', { 'Content-Type': 'application/json; charset=utf-16' }), 415, /charset "utf-16"/);
  });

  it('a UTF-8 byte order mark before the JSON is dropped, as body parsers do', async () => {
    const res = await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":true}')]));
    assert.equal(res.status, 201, res.body);
    const docs = await svc.raw.db(dbName).collection('data').find({}, { projection: { _id: 0 } }).toArray();
    assert.deepEqual(docs, [{ bom: true }]);
    await svc.raw.db(dbName).collection('data').deleteMany({});
  });

  it('a body shorter than its Content-Length → 400 once the client gives up', async () => {
    const res = await new Promise<{ status: number }>((resolve, reject) => {
      import('node:net').then(({ connect }) => {
        const url = new URL(svc.url);
        const socket = connect(Number(url.port), url.hostname, () => {
          socket.write('POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"short":');
          socket.end();
        });
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString()));
        socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0) }));
        socket.on('error', reject);
      }, reject);
    });
    // The connection is half-closed, so the server may not get to answer; if it does, it is a 400.
    assert.ok(res.status === 0 || res.status === 400, `status ${res.status}`);
  });
});
