import assert from 'node:assert/strict';
import http from 'node:http';
import { MongoClient } from 'mongodb';
import { dbUri, spawnService, uniqueDbName, waitFor, type SpawnedService } from './helpers';

/** A GET whose client reads the headers and then nothing: it holds its stream (and cursor slot) until cut off. */
function heldGet(url: string): Promise<{ status: number; req: http.ClientRequest }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.pause();
      resolve({ status: res.statusCode ?? 0, req });
    });
    req.on('error', () => resolve({ status: 0, req }));
  });
}

describe('readers are served, not shed (issue 17, points 1 and 3)', function () {
  this.timeout(120_000);
  let client: MongoClient;
  const dbName = uniqueDbName('readers');

  before(async () => {
    client = new MongoClient(dbUri());
    await client.db(dbName).collection('data').insertMany(Array.from({ length: 100 }, (_, n) => ({ n, key: `value${n}` })));
    // A collection large enough that a stream stays open while its reader reads nothing.
    await client.db(dbName).collection('big').insertMany(Array.from({ length: 20_000 }, (_, i) => ({ i, pad: 'x'.repeat(300) })));
  });
  after(async () => {
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  describe('with a cursor cap smaller than the readers', () => {
    let svc: SpawnedService;
    before(async () => {
      svc = await spawnService({ MONGODB_URI: dbUri(), MONGODB_DB: dbName, MAX_OPEN_CURSORS: '2', LOG_LEVEL: 'info' });
    });
    after(async () => {
      svc.kill();
      await svc.exited;
    });

    it('32 concurrent readers of a 100-document collection, five rounds: every one answered 200 with all 100', async () => {
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(
          Array.from({ length: 32 }, async () => {
            const res = await fetch(`${svc.url}/data`);
            return { status: res.status, count: res.status === 200 ? ((await res.json()) as unknown[]).length : -1 };
          }),
        );
        assert.deepEqual(
          answers.filter((answer) => answer.status !== 200 || answer.count !== 100),
          [],
          `round ${round}`,
        );
      }
    });
  });

  describe('when the wait bound is reached', () => {
    let svc: SpawnedService;
    before(async () => {
      svc = await spawnService({
        MONGODB_URI: dbUri(),
        MONGODB_DB: dbName,
        MONGODB_COLLECTION: 'big',
        MAX_OPEN_CURSORS: '2',
        CURSOR_WAIT_MS: '500',
        STREAM_STALL_TIMEOUT_MS: '30000',
        LOG_LEVEL: 'info',
      });
    });
    after(async () => {
      svc.kill();
      await svc.exited;
    });

    it('a reader waits its turn; past CURSOR_WAIT_MS it gets 503 with Retry-After, logged as a warning without a stack', async () => {
      const held = [await heldGet(`${svc.url}/data`), await heldGet(`${svc.url}/data`)];
      try {
        assert.deepEqual(held.map((h) => h.status), [200, 200]);
        // A slot freed while it waits: the waiter gets it.
        const waiting = fetch(`${svc.url}/data?after=${'f'.repeat(24)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        held.shift()!.req.destroy();
        assert.equal((await waiting).status, 200, 'the waiter was served when a slot freed');
        held.push(await heldGet(`${svc.url}/data`));
        // None freed within the bound: 503.
        const started = Date.now();
        const shed = await fetch(`${svc.url}/data`, { headers: { 'X-Request-Id': 'shed-1' } });
        const waited = Date.now() - started;
        assert.equal(shed.status, 503);
        assert.ok(shed.headers.get('retry-after'), 'Retry-After');
        assert.match(((await shed.json()) as { error: string }).error, /CURSOR_WAIT_MS|waited/);
        assert.ok(waited >= 450, `waited ${waited} ms before shedding`);
      } finally {
        for (const h of held) h.req.destroy();
      }
      await waitFor('request line of the shed request', async () => svc.logs.some((line) => line.includes('"requestId":"shed-1"') && line.includes('"msg":"request"')), 3000);
      const about = svc.logs.filter((line) => line.includes('"requestId":"shed-1"'));
      assert.deepEqual(about.filter((line) => line.includes('"level":"error"') || line.includes('"stack"')), [], about.join('\n'));
    });
  });

  describe('a query the database does not answer in time', () => {
    let svc: SpawnedService;
    before(async () => {
      svc = await spawnService({ MONGODB_URI: dbUri(), MONGODB_DB: dbName, MONGODB_COLLECTION: 'big', MONGODB_OPERATION_TIMEOUT_MS: '100', LOG_LEVEL: 'info' });
    });
    after(async () => {
      svc.kill();
      await svc.exited;
    });

    it('is a 504 that says it timed out, with Retry-After, not 503 "database unavailable"', async () => {
      // FerretDB sorts the whole collection (20 000 documents) for each page: far longer than 100 ms.
      const res = await fetch(`${svc.url}/data?limit=10&after=000000000000000000000000`);
      const body = (await res.json()) as { error: string };
      assert.equal(res.status, 504, body.error);
      assert.match(body.error, /in time|timed out/);
      assert.doesNotMatch(body.error, /unavailable/);
      assert.ok(res.headers.get('retry-after'));
    });
  });
});
