/**
 * `npm run bench`: what the service costs over the raw mongodb driver, in one
 * run on the same database, and its memory in the worst cases its limits
 * allow. Prints measured figures; it asserts nothing (performance is shown,
 * not timed in tests).
 *
 *   BENCH_SECONDS (default 10)  duration of each throughput run
 *   BENCH_CONNECTIONS (32)      concurrent connections / in-flight operations
 *   BENCH_DOCS (100000)         documents streamed for the memory figure
 *   BENCH_PARTS (cpu,memory)    which parts to run: the CPU comparison, the memory worst cases, or both
 *   BENCH_PROFILE=dir           also write a V8 CPU profile of the service (node --cpu-prof) into dir
 *   MONGODB_URI                 use this database instead of starting FerretDB
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { MongoClient, type Collection } from 'mongodb';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startTestDatabase } from '../devkit/database';
import { REPO_ROOT } from '../devkit/paths';
import { freePort } from '../devkit/ports';
import { rssOf, startServiceProcess } from '../devkit/service-process';
import { summarize, table } from './lib/stats';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DOCS = Number(process.env.BENCH_DOCS ?? 100_000);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'cpu,memory').split(',').map((part) => part.trim()));
const POOL = 20; // the service's default MONGODB_MAX_POOL_SIZE, given to the raw driver too

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time (user + system) per request or operation, in µs. */
  cpuUs: number;
  /** The same, less what the process burns when idle over the same time (timers, pool upkeep, GC). */
  netCpuUs: number;
}

/** CPU a process uses per second while idle, in µs (measured over `seconds`). */
async function idleRate(measure: () => number, seconds = 3): Promise<number> {
  const before = measure();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return (measure() - before) / seconds;
}

/** CPU time (user + system) a process has used so far, in µs, from /proc (clock ticks, usually 10 ms). */
function cpuOfPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks / 100) * 1e6;
}

/** This process's own CPU time in µs. */
const ownCpu = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

/** CONNECTIONS workers doing `operation` back to back for SECONDS; CPU is this process's (the driver's client side). */
async function driverRun(operation: () => Promise<unknown>, seconds = SECONDS, idlePerSecond = 0): Promise<Figures> {
  const latencies: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const cpuBefore = ownCpu();
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
  const cpu = ownCpu() - cpuBefore;
  const { p50, p99 } = summarize(latencies);
  return { rps: latencies.length / seconds, p50, p99, errors, cpuUs: cpu / latencies.length, netCpuUs: (cpu - idlePerSecond * seconds) / latencies.length };
}

/** autocannon against `url`; CPU is the server process's (`pid`), per request answered. */
async function httpRun(url: string, pid: number, options: Partial<autocannon.Options>, seconds = SECONDS, idlePerSecond = 0): Promise<Figures> {
  const cpuBefore = cpuOfPid(pid);
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, ...options });
  const cpu = cpuOfPid(pid) - cpuBefore;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    cpuUs: cpu / Math.max(1, result.requests.total),
    netCpuUs: (cpu - idlePerSecond * seconds) / Math.max(1, result.requests.total),
  };
}

/** The framework floor: a bare node:http server answering a constant (reading POST bodies first). */
async function startBareServer(): Promise<{ url: string; pid: number; stop(): void }> {
  const port = await freePort();
  const source = `
    const http = require('node:http');
    http.createServer((req, res) => {
      const answer = () => { res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' }); res.end('{"status":"ok"}'); };
      if (req.method === 'POST') { req.resume(); req.on('end', answer); } else answer();
    }).listen(${port}, '127.0.0.1', () => console.log('ready'));`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill() };
}

async function seed(collection: Collection, count: number, make: (n: number) => object = (n) => ({ key: `value${n}`, n, tags: ["a", "b"], nested: { ok: true } })): Promise<void> {
  const batch = 5000;
  for (let done = 0; done < count; done += batch) {
    const size = Math.min(batch, count - done);
    await collection.insertMany(Array.from({ length: size }, (_, i) => make(done + i)));
  }
}

/** Runs `work` while sampling the service's RSS every 20 ms; returns the peak. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ peak: number; result: T; ms: number }> {
  let peak = await rssOf(pid);
  const sampler = setInterval(() => void rssOf(pid).then((rss) => (peak = Math.max(peak, rss)), () => undefined), 20);
  const started = Date.now();
  const result = await work();
  clearInterval(sampler);
  peak = Math.max(peak, await rssOf(pid));
  return { peak, result, ms: Date.now() - started };
}

/** One request, body read to the end; resolves with status and size. */
function request(url: string, method: string, body?: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {} }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<void> {
  const db = await startTestDatabase((line) => console.log(`[db] ${line}`));
  const dbName = `bench_${Date.now()}`;
  const client = new MongoClient(db.uri, { maxPoolSize: POOL });
  const profileDir = process.env.BENCH_PROFILE;
  const stopDb = async () => {
    await client.close();
    await db.stop();
  };
  const service = await startServiceProcess({
    MONGODB_URI: db.uri,
    MONGODB_DB: dbName,
    MONGODB_MAX_POOL_SIZE: String(POOL),
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
  }, { nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : [] }).catch(async (error: unknown) => {
    await stopDb(); // a service that cannot start must not leave the database running
    throw error;
  });
  const bare = await startBareServer();
  const memory: Array<[string, string]> = [];
  try {
    console.log(`service ${service.url} (pid ${service.pid}); ${CONNECTIONS} connections, ${SECONDS} s per run, database ${db.kind}\n`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const freshIdle = await rssOf(service.pid);
    const raw = client.db(dbName).collection('raw');
    const results: Array<[string, Figures, Figures, Figures]> = [];
    let idleBefore = freshIdle;
    if (PARTS.has('cpu')) {
      await seed(client.db(dbName).collection('data'), 1000);
      await seed(raw, 1000);

      const body = JSON.stringify({ key: 'value', n: 1, nested: { ok: true } });
      const post = { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body };
      // Warm every path (JIT, connection pools) before measuring.
      await httpRun(`${service.url}/data?limit=100`, service.pid, {}, 2);
      await httpRun(`${bare.url}/`, bare.pid, {}, 1);
      await driverRun(async () => JSON.stringify(await raw.find({}).sort({ _id: 1 }).limit(100).toArray()), 2);

      const serviceIdle = await idleRate(() => cpuOfPid(service.pid));
      const driverIdle = await idleRate(ownCpu);
      const bareIdle = await idleRate(() => cpuOfPid(bare.pid));
      console.log(`idle CPU: service ${(serviceIdle / 1000).toFixed(1)} ms/s, bench process (driver) ${(driverIdle / 1000).toFixed(1)} ms/s, bare server ${(bareIdle / 1000).toFixed(1)} ms/s\n`);

      // GET first, while both collections hold exactly 1000 documents (FerretDB sorts in memory,
      // so a page costs more as the collection grows); POST afterwards.
      const getService = await httpRun(`${service.url}/data?limit=100`, service.pid, {}, SECONDS, serviceIdle);
      const getDriver = await driverRun(async () => JSON.stringify(await raw.find({}).sort({ _id: 1 }).limit(100).toArray()), SECONDS, driverIdle);
      const getBare = await httpRun(`${bare.url}/`, bare.pid, {}, SECONDS, bareIdle);
      results.push(['GET /data?limit=100 ↔ find().toArray()+JSON.stringify', getService, getDriver, getBare]);
      const postService = await httpRun(`${service.url}/data`, service.pid, post, SECONDS, serviceIdle);
      const postDriver = await driverRun(() => raw.insertOne(JSON.parse(body)), SECONDS, driverIdle);
      const postBare = await httpRun(`${bare.url}/`, bare.pid, post, SECONDS, bareIdle);
      results.push(['POST /data ↔ insertOne', postService, postDriver, postBare]);

      console.log('throughput (all processes share the same cores)');
      console.log(
        table([
          ['operation', 'service r/s', 'p50 ms', 'p99 ms', 'driver op/s', 'p50 ms', 'p99 ms', 'service ÷ driver'],
          ...results.map(([name, svc, drv]) => [name, svc.rps.toFixed(0), svc.p50.toFixed(1), svc.p99.toFixed(1), drv.rps.toFixed(0), drv.p50.toFixed(1), drv.p99.toFixed(1), `${(svc.rps / drv.rps).toFixed(2)}×`]),
        ]),
      );
      console.log('\nCPU per request (service process, from /proc) against the driver\'s own client CPU per operation');
      console.log(
        table([
          ['operation', 'service µs', 'driver µs', 'bare node:http µs', 'service − driver', 'service ÷ driver', 'net of idle: service', 'driver', '−', '÷'],
          ...results.map(([name, svc, drv, bareRun]) => [
            name,
            svc.cpuUs.toFixed(0),
            drv.cpuUs.toFixed(0),
            bareRun.cpuUs.toFixed(0),
            `+${(svc.cpuUs - drv.cpuUs).toFixed(0)}`,
            `${(svc.cpuUs / drv.cpuUs).toFixed(2)}×`,
            svc.netCpuUs.toFixed(0),
            drv.netCpuUs.toFixed(0),
            `+${(svc.netCpuUs - drv.netCpuUs).toFixed(0)}`,
            `${(svc.netCpuUs / drv.netCpuUs).toFixed(2)}×`,
          ]),
        ]),
      );
      for (const [name, svc, drv, bareRun] of results) {
        if (svc.errors || drv.errors || bareRun.errors) console.log(`  ${name} errors: service ${svc.errors}, driver ${drv.errors}, bare ${bareRun.errors}`);
      }

    }

    // Memory, worst cases the limits allow (and a few just past them), 4 at once.
    if (PARTS.has('memory')) {
      const data = client.db(dbName).collection('data');
      await data.deleteMany({});
      idleBefore = await rssOf(service.pid);
      const tinyDocs = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i, pad: 'x'.repeat(1000) })));
      const overDocs = `[${'{},'.repeat(349_000)}{}]`; // ~1 MiB of empty documents: refused (MAX_BULK_DOCUMENTS), after parsing
      const wideDoc = JSON.stringify({ values: Array.from({ length: 9_990 }, (_, i) => i * 1.5) });
      const bulk = await peakRss(service.pid, () => Promise.all(Array.from({ length: 4 }, () => request(`${service.url}/data`, 'POST', tinyDocs))));
      memory.push([`4 × POST of 1000 documents (${mb(tinyDocs.length)} each)`, `${mb(bulk.peak)} (${bulk.result.map((r) => r.status).join(',')})`]);
      const over = await peakRss(service.pid, () => Promise.all(Array.from({ length: 4 }, () => request(`${service.url}/data`, 'POST', overDocs))));
      memory.push([`4 × POST of 349 001 empty documents (${mb(overDocs.length)} each, refused)`, `${mb(over.peak)} (${over.result.map((r) => r.status).join(',')})`]);
      const wide = await peakRss(service.pid, () => Promise.all(Array.from({ length: 4 }, () => request(`${service.url}/data`, 'POST', wideDoc))));
      memory.push([`4 × POST of one document with 9 990 values`, `${mb(wide.peak)} (${wide.result.map((r) => r.status).join(',')})`]);

      await data.deleteMany({});
      await seed(data, 60, (n) => ({ n, blob: 'y'.repeat(1000 * 1000) })); // documents near the 1 MiB body limit
      const pages = await peakRss(service.pid, () => Promise.all(Array.from({ length: 4 }, () => request(`${service.url}/data?limit=1000`, 'GET'))));
      memory.push([`4 × GET /data?limit=1000 over 60 documents of 1 MB`, `${mb(pages.peak)} (${pages.result.map((r) => `${r.status}:${mb(r.bytes)}`).join(', ')})`]);
      const streams = await peakRss(service.pid, () => Promise.all(Array.from({ length: 4 }, () => request(`${service.url}/data`, 'GET'))));
      memory.push([`4 × GET /data (streamed) over 60 documents of 1 MB`, `${mb(streams.peak)} (${streams.result.map((r) => `${r.status}:${mb(r.bytes)}`).join(', ')})`]);

      await data.deleteMany({});
      const seeded = Date.now();
      await seed(data, DOCS);
      console.log(`\nseeded ${DOCS} documents in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const one = await peakRss(service.pid, () => request(`${service.url}/data`, 'GET'));
      memory.push([`1 × GET /data streaming ${DOCS} documents`, `${mb(one.peak)} (${mb(one.result.bytes)} in ${one.ms} ms)`]);
      const four = await peakRss(service.pid, () => Promise.all(Array.from({ length: 4 }, () => request(`${service.url}/data`, 'GET'))));
      memory.push([`4 × GET /data streaming ${DOCS} documents`, `${mb(four.peak)} (${four.ms} ms)`]);

      console.log(`\nservice RSS: idle at start ${mb(freshIdle)}, idle after the load runs ${mb(idleBefore)}; peaks (Kubernetes limit 500Mi = 524 MB):`);
      console.log(table([['case', 'peak RSS (statuses)'], ...memory]));
    }

    const out = path.join(REPO_ROOT, 'bench-results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ seconds: SECONDS, connections: CONNECTIONS, database: db.kind, results, memory: { freshIdle, idleBefore, cases: memory } }, null, 2));
    console.log(`\nfigures saved to ${path.relative(REPO_ROOT, file)}`);
  } finally {
    bare.stop();
    await service.stop();
    await client.db(dbName).dropDatabase().catch(() => undefined);
    await stopDb();
    if (profileDir) console.log(`CPU profile of the service written to ${profileDir}`);
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
