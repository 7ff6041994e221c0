import assert from 'node:assert/strict';
import http from 'node:http';
import { MongoClient } from 'mongodb';
import { dbUri, freePort, postJson, spawnService, uniqueDbName, waitFor, type SpawnedService } from './helpers';
import { TcpProxy } from './tcp-proxy';

/** The database away at start and mid-run: fast 503s, readiness follows, recovery without a restart. */
describe('database faults', function () {
  this.timeout(90_000);
  let proxy: TcpProxy;
  let svc: SpawnedService;
  let dbName: string;

  const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = Date.now();
    const value = await work();
    return { value, ms: Date.now() - started };
  };
  const status = async (path: string) => (await fetch(`${svc.url}${path}`)).status;

  before(async () => {
    proxy = TcpProxy.forUri(dbUri(), await freePort());
    dbName = uniqueDbName('faults');
    // The proxy is down: the database is unreachable when the service starts.
    svc = await spawnService({
      MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/`,
      MONGODB_DB: dbName,
      MONGODB_SERVER_SELECTION_TIMEOUT_MS: '1500',
      READY_TIMEOUT_MS: '1000',
    });
  });
  after(async () => {
    svc.kill('SIGKILL');
    await proxy.down();
    const client = new MongoClient(dbUri());
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('starts while the database is down: alive, not ready, and requests fail fast with 503', async () => {
    assert.equal(await status('/healthz'), 200);

    const ready = await timed(() => fetch(`${svc.url}/readyz`));
    assert.equal(ready.value.status, 503);
    assert.deepEqual(await ready.value.json(), { error: 'database unavailable' });
    assert.ok(ready.ms < 2500, `readyz took ${ready.ms} ms`);

    const post = await timed(() => postJson(`${svc.url}/data`, { during: 'outage' }));
    assert.equal(post.value.status, 503);
    assert.deepEqual(post.value.json, { error: 'database unavailable, try again shortly' });
    assert.ok(post.ms < 5000, `POST took ${post.ms} ms`);
    // A bulk goes through insertMany, which wraps the driver's error in one of its own (a 500 before).
    const bulk = await postJson(`${svc.url}/data`, [{ during: 'outage' }, { bulk: true }]);
    assert.equal(bulk.status, 503);
    assert.deepEqual(bulk.json, { error: 'database unavailable, try again shortly' });

    const get = await timed(() => fetch(`${svc.url}/data`));
    assert.equal(get.value.status, 503, 'GET /data fails cleanly, before any body is streamed');
    assert.equal(get.value.headers.get('retry-after'), '2');
    assert.ok(get.ms < 5000, `GET took ${get.ms} ms`);
  });

  it('recovers by itself when the database comes up', async () => {
    await proxy.up();
    const ms = await waitFor('readyz to turn 200', async () => (await status('/readyz')) === 200, 20_000);
    console.log(`      (ready ${ms} ms after the database came up)`);
    const post = await postJson(`${svc.url}/data`, { after: 'recovery' });
    assert.equal(post.status, 201);
  });

  it('the database dropping mid-run: 503s within seconds, then recovery, data intact', async () => {
    await proxy.down();
    const post = await timed(() => postJson(`${svc.url}/data`, { during: 'second outage' }));
    assert.equal(post.value.status, 503, svc.logs.filter((line) => line.includes('"level":"error"')).map((line) => line.slice(0, 300)).join('\n'));
    assert.ok(post.ms < 5000, `POST took ${post.ms} ms`);
    assert.equal((await postJson(`${svc.url}/data`, [{ during: 'second outage' }, { bulk: true }])).status, 503);
    await waitFor('readyz to turn 503', async () => (await status('/readyz')) === 503, 5000);
    assert.equal(await status('/healthz'), 200, 'liveness never depends on the database');

    await proxy.up();
    await waitFor('readyz to turn 200', async () => (await status('/readyz')) === 200, 20_000);
    const res = await fetch(`${svc.url}/data`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), [{ after: 'recovery' }]);
    assert.equal(svc.child.exitCode, null, 'the process never exited');
  });

  it('the database dropping in the middle of a stream aborts that response (never a clean, truncated JSON)', async () => {
    const client = new MongoClient(dbUri());
    await client.db(dbName).collection('data').insertMany(Array.from({ length: 20_000 }, (_, i) => ({ i, pad: 'x'.repeat(200) })));
    await client.close();
    const outcome = await new Promise<{ ended: boolean; bytes: number }>((resolve) => {
      http.get(`${svc.url}/data`, { agent: false }, (res) => {
        let bytes = 0;
        let paused = false;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (paused) return;
          paused = true;
          res.pause();
          void proxy.down().then(() => setTimeout(() => res.resume(), 200));
        });
        res.on('end', () => resolve({ ended: res.complete, bytes }));
        res.on('error', () => resolve({ ended: false, bytes }));
        res.on('close', () => resolve({ ended: res.complete, bytes }));
      });
    });
    assert.ok(outcome.bytes > 0, 'the stream had started');
    assert.equal(outcome.ended, false, 'the client sees the response cut, not a complete one');
    assert.equal(await status('/healthz'), 200, 'the process lives');
    await proxy.up();
    await waitFor('readyz to turn 200', async () => (await status('/readyz')) === 200, 20_000);
  });
});
