/**
 * `npm run bench`: what the service costs over the raw mongodb driver, and its
 * memory while streaming a large collection. Prints measured figures; it
 * asserts nothing (performance is shown, not timed in tests).
 *
 *   BENCH_SECONDS (default 10)  duration of each throughput run
 *   BENCH_CONNECTIONS (50)      concurrent connections / in-flight operations
 *   BENCH_DOCS (100000)         documents streamed for the memory figure
 *   MONGODB_URI                 use this database instead of starting FerretDB
 */
import autocannon from 'autocannon';
import { MongoClient, type Collection } from 'mongodb';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startTestDatabase } from '../devkit/database';
import { REPO_ROOT } from '../devkit/paths';
import { rssOf, startServiceProcess } from '../devkit/service-process';
import { summarize, table } from './lib/stats';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const DOCS = Number(process.env.BENCH_DOCS ?? 100_000);
const POOL = 20; // the service's default MONGODB_MAX_POOL_SIZE, given to the raw driver too

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** CONNECTIONS workers doing `operation` back to back for SECONDS, like autocannon does over HTTP. */
async function driverRun(operation: () => Promise<unknown>, seconds = SECONDS): Promise<Figures> {
  const latencies: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < end) {
        const started = process.hrtime.bigint();
        try {
          await operation();
        } catch {
          errors++;
        }
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    }),
  );
  const { p50, p99 } = summarize(latencies);
  return { rps: latencies.length / seconds, p50, p99, errors };
}

async function httpRun(url: string, options: Partial<autocannon.Options>): Promise<Figures> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, ...options });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

async function seed(collection: Collection, count: number): Promise<void> {
  const batch = 5000;
  for (let done = 0; done < count; done += batch) {
    const size = Math.min(batch, count - done);
    await collection.insertMany(Array.from({ length: size }, (_, i) => ({ key: `value${done + i}`, n: done + i, tags: ['a', 'b'], nested: { ok: true } })));
  }
}

/** Streams GET /data to the end (reading as fast as it arrives), sampling the service's RSS. */
async function streamAndSample(url: string, pid: number, streams: number): Promise<{ peak: number; bytes: number; docs: number; ms: number }> {
  let peak = await rssOf(pid);
  const sampler = setInterval(() => void rssOf(pid).then((rss) => (peak = Math.max(peak, rss)), () => undefined), 25);
  const started = Date.now();
  const results = await Promise.all(
    Array.from(
      { length: streams },
      () =>
        new Promise<{ bytes: number; docs: number }>((resolve, reject) => {
          http.get(`${url}/data`, (res) => {
            if (res.statusCode !== 200) reject(new Error(`GET /data answered ${res.statusCode}`));
            let bytes = 0;
            let docs = 0;
            let tail = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              bytes += chunk.length;
              docs += chunk.split('"key"').length - 1;
              tail = chunk.slice(-2);
            });
            res.on('end', () => (tail.endsWith(']') ? resolve({ bytes, docs }) : reject(new Error('stream cut short'))));
            res.on('error', reject);
          }).on('error', reject);
        }),
    ),
  );
  clearInterval(sampler);
  return { peak, bytes: results[0].bytes, docs: results[0].docs, ms: Date.now() - started };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<void> {
  const db = await startTestDatabase((line) => console.log(`[db] ${line}`));
  const dbName = `bench_${Date.now()}`;
  const client = new MongoClient(db.uri, { maxPoolSize: POOL });
  const service = await startServiceProcess({ MONGODB_URI: db.uri, MONGODB_DB: dbName, MONGODB_MAX_POOL_SIZE: String(POOL), LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' });
  try {
    console.log(`service ${service.url} (pid ${service.pid}); ${CONNECTIONS} connections, ${SECONDS} s per run, database ${db.kind}\n`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const freshIdle = await rssOf(service.pid);
    const raw = client.db(dbName).collection('raw');
    await seed(client.db(dbName).collection('data'), 1000);
    await seed(raw, 1000);

    const body = JSON.stringify({ key: 'value', n: 1, nested: { ok: true } });
    // Warm both paths (JIT, connection pools) before measuring.
    await httpRun(`${service.url}/data?limit=100`, { duration: 2 });
    await driverRun(() => raw.find({}).sort({ _id: 1 }).limit(100).toArray(), 2);

    // GET first, while both collections hold exactly 1000 documents (FerretDB sorts in memory,
    // so a page costs more as the collection grows); POST afterwards.
    const results: Array<[string, Figures, Figures]> = [];
    const getService = await httpRun(`${service.url}/data?limit=100`, {});
    const getDriver = await driverRun(() => raw.find({}).sort({ _id: 1 }).limit(100).toArray());
    results.push(['GET /data?limit=100 (find 100)', getService, getDriver]);
    const postService = await httpRun(`${service.url}/data`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const postDriver = await driverRun(() => raw.insertOne(JSON.parse(body)));
    results.push(['POST /data (insertOne)', postService, postDriver]);

    console.log(
      table([
        ['operation', 'service r/s', 'p50 ms', 'p99 ms', 'driver r/s', 'p50 ms', 'p99 ms', 'ratio'],
        ...results.map(([name, svc, drv]) => [name, svc.rps.toFixed(0), svc.p50.toFixed(1), svc.p99.toFixed(1), drv.rps.toFixed(0), drv.p50.toFixed(1), drv.p99.toFixed(1), `${(svc.rps / drv.rps).toFixed(2)}×`]),
      ]),
    );
    for (const [name, svc, drv] of results) {
      if (svc.errors || drv.errors) console.log(`  ${name} errors: service ${svc.errors}, driver ${drv.errors}`);
    }

    // Memory while streaming a big collection.
    const big = client.db(dbName).collection('data');
    await big.deleteMany({});
    const seeded = Date.now();
    await seed(big, DOCS);
    console.log(`\nseeded ${DOCS} documents in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idle = await rssOf(service.pid);
    const one = await streamAndSample(service.url, service.pid, 1);
    const four = await streamAndSample(service.url, service.pid, 4);
    console.log(`idle RSS at start                 ${mb(freshIdle)}`);
    console.log(`idle RSS after the load runs      ${mb(idle)}`);
    console.log(`GET /data, 1 stream  of ${DOCS} docs  peak RSS ${mb(one.peak)} (+${mb(one.peak - idle)}), ${mb(one.bytes)} sent in ${one.ms} ms, ${one.docs} docs`);
    console.log(`GET /data, 4 streams of ${DOCS} docs  peak RSS ${mb(four.peak)} (+${mb(four.peak - idle)}) in ${four.ms} ms`);

    const out = path.join(REPO_ROOT, 'bench-results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ seconds: SECONDS, connections: CONNECTIONS, database: db.kind, results, memory: { freshIdle, idle, one, four, docs: DOCS } }, null, 2));
    console.log(`\nfigures saved to ${path.relative(REPO_ROOT, file)}`);
  } finally {
    await service.stop();
    await client.db(dbName).dropDatabase().catch(() => undefined);
    await client.close();
    await db.stop();
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
