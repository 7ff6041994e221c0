import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type FindCursor } from 'mongodb';
import { startFerretDb, type FerretDbProcess } from '../../devkit/ferretdb';
import { rssOf } from '../../devkit/service-process';
import { spawnService, waitFor, type SpawnedService } from './helpers';

/**
 * Cursors and readiness, whatever the client does. A database of its own: before
 * the fix, these requests exhausted FerretDB's backend connections for everyone.
 */
describe('resources held by a request are released whatever the client does', function () {
  this.timeout(120_000);
  const DB = 'resources';
  let dataDir: string;
  let ferret: FerretDbProcess;
  let client: MongoClient;
  let svc: SpawnedService;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'koa-mongodb-resources-'));
    ferret = await startFerretDb({ dataDir });
    client = new MongoClient(ferret.uri);
    // Several cursor batches of ~300-byte documents, so every stream keeps its cursor open.
    await client.db(DB).collection('data').insertMany(Array.from({ length: 30_000 }, (_, i) => ({ i, pad: 'x'.repeat(300) })));
    svc = await spawnService({
      MONGODB_URI: ferret.uri,
      MONGODB_DB: DB,
      MONGODB_OPERATION_TIMEOUT_MS: '3000',
      READY_TIMEOUT_MS: '1000',
      STREAM_STALL_TIMEOUT_MS: '1000',
      MAX_OPEN_CURSORS: '8',
      CURSOR_WAIT_MS: '300',
      LOG_LEVEL: 'warn',
    });
  });
  after(async () => {
    svc?.kill('SIGKILL');
    await client?.close();
    await ferret?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const openCursors = async (url = svc.url): Promise<number> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(/^db_open_cursors (\d+)/m.exec(text)?.[1] ?? NaN);
  };

  /** A GET /data whose client reads the status line and hangs up at once. */
  const abortedGet = () =>
    new Promise<number>((resolve) => {
      const req = http.get(`${svc.url}/data`, { agent: false }, (res) => {
        res.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });

  const head = () =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .request(`${svc.url}/data`, { method: 'HEAD', agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        })
        .on('error', reject)
        .end();
    });

  it('100 HEAD /data and 100 GETs aborted at once leave no cursor open and the database usable', async () => {
    for (let round = 0; round < 5; round++) {
      const heads = await Promise.all(Array.from({ length: 20 }, head));
      for (const res of heads) {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^application\/json/);
      }
      // Run past the cursor ceiling on purpose: the surplus is refused, never leaked.
      const aborted = await Promise.all(Array.from({ length: 20 }, abortedGet));
      assert.ok(aborted.every((status) => status === 200 || status === 503), `statuses ${aborted.join(',')}`);
      await waitFor('every cursor closed', async () => (await openCursors()) === 0, 5000, 50);
    }
    const started = Date.now();
    const post = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"after":"abuse"}' });
    assert.equal(post.status, 201, await post.text());
    assert.ok(Date.now() - started < 2000, `POST took ${Date.now() - started} ms`);
    assert.equal((await fetch(`${svc.url}/data?limit=5`)).status, 200);
    assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
  });

  it('a reader that stops reading is cut off after STREAM_STALL_TIMEOUT_MS, and its cursor closed', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${svc.url}/data`, { agent: false }, resolve).on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    res.pause(); // and read nothing more for now
    res.on('error', () => undefined);
    const started = Date.now();
    assert.equal(await openCursors(), 1, 'the stream holds its cursor');
    await waitFor('the stalled stream to give its cursor back', async () => (await openCursors()) === 0, 10_000, 100);
    const ms = Date.now() - started;
    assert.ok(ms >= 500, `cut after ${ms} ms: not before the reader had its time`);
    // A paused socket cannot see the server hang up; reading again shows the response was cut.
    const complete = await new Promise<boolean>((resolve) => {
      res.socket.on('close', () => resolve(res.complete));
      res.resume();
    });
    assert.equal(complete, false, 'the response was cut, not completed');
  });

  it('a reader that never takes the last part (one document larger than the socket holds) is cut off too', async () => {
    // One part, the whole answer: written with the end, after which only the stall timer can let go of it.
    await client.db(DB).collection('one_large').insertOne({ blob: 'z'.repeat(12 * 1024 * 1024) });
    const large = await spawnService({ MONGODB_URI: ferret.uri, MONGODB_DB: DB, MONGODB_COLLECTION: 'one_large', STREAM_STALL_TIMEOUT_MS: '1000', LOG_LEVEL: 'warn' });
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`${large.url}/data`, { agent: false }, resolve).on('error', reject);
      });
      assert.equal(res.statusCode, 200);
      res.pause();
      res.on('error', () => undefined);
      await waitFor('the stall to be logged', async () => large.logs.some((line) => line.includes('StalledReaderError')), 10_000, 100);
      const complete = await new Promise<boolean>((resolve) => {
        res.socket.on('close', () => resolve(res.complete));
        res.resume();
      });
      assert.equal(complete, false, 'the response was cut, not completed');
    } finally {
      large.kill();
      await large.exited;
    }
  });

  it('a reader that keeps reading, but slowly, is cut off after STREAM_MAX_MS, and its cursor closed', async () => {
    // A service whose stall timeout is out of reach: only the cap on a stream's whole time can end this one.
    const slow = await spawnService({ MONGODB_URI: ferret.uri, MONGODB_DB: DB, STREAM_STALL_TIMEOUT_MS: '60000', STREAM_MAX_MS: '3000', LOG_LEVEL: 'warn' });
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`${slow.url}/data`, { agent: false }, resolve).on('error', reject);
      });
      assert.equal(res.statusCode, 200);
      res.on('error', () => undefined);
      const started = Date.now();
      // A little every 200 ms, far from the end of 30 000 documents.
      res.pause();
      const trickle = setInterval(() => res.read(1024), 200);
      try {
        assert.equal(await openCursors(slow.url), 1, 'the stream holds its cursor');
        await waitFor('the slow stream to give its cursor back', async () => (await openCursors(slow.url)) === 0, 20_000, 100);
      } finally {
        clearInterval(trickle);
      }
      const ms = Date.now() - started;
      assert.ok(ms >= 2500, `cut after ${ms} ms: not before STREAM_MAX_MS`);
      const complete = await new Promise<boolean>((resolve) => {
        res.socket.on('close', () => resolve(res.complete));
        res.resume();
      });
      assert.equal(complete, false, 'the response was cut, not completed');
    } finally {
      slow.kill('SIGKILL');
    }
  });

  it('streams beyond MAX_OPEN_CURSORS get 503 with Retry-After, not a leaked cursor', async () => {
    const held: http.ClientRequest[] = [];
    const statuses = await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
            const req = http.get(`${svc.url}/data`, { agent: false }, (res) => {
              if (res.statusCode !== 200) res.resume();
              resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
            });
            req.on('error', () => undefined);
            held.push(req);
            void reject;
          }),
      ),
    );
    assert.equal(statuses.filter((s) => s.status === 200).length, 8);
    const refused = statuses.filter((s) => s.status === 503);
    assert.equal(refused.length, 2);
    assert.ok(refused.every((s) => s.retryAfter === '1'));
    for (const req of held) req.destroy();
    await waitFor('every cursor closed', async () => (await openCursors()) === 0, 5000, 50);
  });

  it('readers of 1 MB documents at once: memory bounded by the read slots, not by the readers', async () => {
    // 15 documents of 1 MB: one batch whatever the database (MongoDB caps a batch at 16 MiB, FerretDB does
    // not cap it), so that every reader's cursor holds all of them while its reader is slow.
    const LARGE = 'resources_large';
    await client.db(LARGE).collection('data').insertMany(Array.from({ length: 15 }, (_, n) => ({ n, blob: 'z'.repeat(1_000_000) })));
    const slots = '2';
    const readers = await spawnService({ MONGODB_URI: ferret.uri, MONGODB_DB: LARGE, MAX_OPEN_CURSORS: slots, MAX_READS_IN_FLIGHT: slots, CURSOR_WAIT_MS: '120000', LOG_LEVEL: 'warn' });
    const streams: http.IncomingMessage[] = [];
    try {
      const page = async () => {
        const res = await fetch(`${readers.url}/data?limit=1000`);
        return { status: res.status, bytes: (await res.arrayBuffer()).byteLength };
      };
      assert.equal((await page()).status, 200); // warm
      await new Promise((resolve) => setTimeout(resolve, 500));
      const idle = await rssOf(readers.pid);
      let peak = idle;
      const sampler = setInterval(() => void rssOf(readers.pid).then((rss) => (peak = Math.max(peak, rss)), () => undefined), 20);
      // 8 streams whose readers take the first bytes and then nothing for a while (each holds its batch), and 8 pages.
      const streamed = Array.from({ length: 8 }, () =>
        new Promise<number>((resolve, reject) => {
          http.get(`${readers.url}/data`, { agent: false }, (res) => {
            streams.push(res);
            res.pause();
            let bytes = 0;
            res.on('data', (chunk: Buffer) => (bytes += chunk.length));
            res.on('end', () => resolve(bytes));
            res.on('error', reject);
          }).on('error', reject);
        }),
      );
      const pages = await Promise.all(Array.from({ length: 8 }, page));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const held = streams.length;
      // Then read: each stream that ends gives its slot to the next.
      const resume = setInterval(() => streams.forEach((res) => res.resume()), 50);
      const bytes = await Promise.all(streamed).finally(() => {
        clearInterval(resume);
        clearInterval(sampler);
      });
      assert.ok(pages.every((answer) => answer.status === 200 && answer.bytes > 3_000_000 && answer.bytes <= 4 * 1024 * 1024 + 2), JSON.stringify(pages));
      assert.ok(bytes.every((count) => count > 15_000_000), `every stream whole: ${bytes.join(', ')}`);
      const grew = (peak - idle) / 1e6;
      console.log(`      ${held} streams held at once; peak RSS ${(peak / 1e6).toFixed(0)} MB, ${grew.toFixed(0)} MB over idle`);
      assert.equal(held, Number(slots), 'streams past MAX_OPEN_CURSORS wait for a slot (and hold nothing meanwhile)');
      // 2 slots of 15 MB each for streams and for pages, and the driver's copies while a reply comes in.
      assert.ok(grew < 160, `peak RSS ${(peak / 1e6).toFixed(0)} MB, ${grew.toFixed(0)} MB over idle`);
    } finally {
      streams.forEach((res) => res.destroy());
      await readers.stop();
      await client.db(LARGE).dropDatabase();
    }
  });

  it('/readyz turns 503 when the database answers pings but cannot serve this process, and back', async () => {
    // Another client holds FerretDB's backend connections (one per open cursor), as leaked cursors did.
    const hog = new MongoClient(ferret.uri);
    const cursors: Array<FindCursor> = [];
    try {
      for (let n = 0; n < 110; n++) {
        const cursor = hog.db(DB).collection('data').find({}, { batchSize: 2 });
        const opened = await Promise.race([cursor.hasNext().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1500))]);
        cursors.push(cursor);
        if (!opened) break;
      }
      await waitFor('readyz 503', async () => (await fetch(`${svc.url}/readyz`)).status === 503, 10_000, 200);
    } finally {
      await Promise.all(cursors.map((cursor) => cursor.close().catch(() => undefined)));
      await hog.close(true);
    }
    await waitFor('readyz 200 again', async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, 200);
  });
});
