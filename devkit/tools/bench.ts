/**
 * `npm run bench`: what the service costs over the raw mongodb driver, in one
 * run on the same database, and its memory in the worst cases its limits
 * allow. Prints measured figures; it asserts nothing (performance is shown,
 * not timed in tests).
 *
 *   BENCH_SECONDS (default 5)   duration of each throughput run
 *   BENCH_ROUNDS (default 3)    rounds of the CPU comparison, taken in turn (service, driver, floors, again…);
 *                               each figure is the median of its rounds, and the spread is printed
 *   BENCH_CONNECTIONS (32)      concurrent connections / in-flight operations
 *   BENCH_DOCS (100000)         documents streamed for the memory figure
 *   BENCH_PARTS (cpu,scale,memory)  which parts to run: the CPU comparison; a page's cost at 1 000 and
 *                               20 000 documents, with the plan the database gives the page's query; the memory worst cases
 *   BENCH_ON (ferretdb,stub)    where the CPU comparison runs: the database, the instant-reply wire stub, or both
 *   BENCH_PROFILE=dir           also write a V8 CPU profile of the service (node --cpu-prof) into dir
 *   BENCH_GUIDE=0               leave out the guide's own Flask app (devkit/guide-app.ts: gunicorn, its
 *                               master's and workers' CPU), run by default where python3 can build its venv
 *   MONGODB_URI                 use this database instead of starting FerretDB
 */
import autocannon from 'autocannon';
import { MongoClient, type Collection } from 'mongodb';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startTestDatabase } from '../database';
import { ensureGuideVenv, startGuideApp } from '../guide-app';
import { REPO_ROOT } from '../paths';
import { freePort } from '../ports';
import { cpuOfPid } from '../proc-cpu';
import { rssOf, startServiceProcess } from '../service-process';
import { supervise, waitReady } from '../supervisor';
import { startWireStub } from '../wire-stub';
import { summarize, table } from './stats';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DOCS = Number(process.env.BENCH_DOCS ?? 100_000);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'cpu,scale,memory').split(',').map((part) => part.trim()));
const ON = new Set((process.env.BENCH_ON ?? 'ferretdb,stub').split(',').map((target) => target.trim()));
const POOL = 20; // the service's default MONGODB_MAX_POOL_SIZE, given to the raw driver too

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  /** Failed requests: non-2xx answers, connection errors and timeouts (for the driver: rejected operations). */
  errors: number;
  /** Of those, answers with a status outside 2xx. */
  non2xx: number;
  /** CPU time (user + system) per request or operation, in µs. */
  cpuUs: number;
  /** The same, less what the process burns when idle over the same time (timers, pool upkeep, GC). */
  netCpuUs: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** Each field the median of its values over the rounds. */
function medianFigures(rounds: Figures[]): Figures {
  const field = (key: keyof Figures) => median(rounds.map((round) => round[key]));
  const sum = (key: 'errors' | 'non2xx') => rounds.reduce((total, round) => total + round[key], 0);
  return { rps: field('rps'), p50: field('p50'), p99: field('p99'), errors: sum('errors'), non2xx: sum('non2xx'), cpuUs: field('cpuUs'), netCpuUs: field('netCpuUs') };
}

/** CPU a process uses per second while idle, in µs (measured over `seconds`). */
async function idleRate(measure: () => number, seconds = 3): Promise<number> {
  const before = measure();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return (measure() - before) / seconds;
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
  return { rps: latencies.length / seconds, p50, p99, errors, non2xx: 0, cpuUs: cpu / latencies.length, netCpuUs: (cpu - idlePerSecond * seconds) / latencies.length };
}

/** autocannon against `url`; CPU is the server's, per request answered: its process (`pid`), or what `pid()` says. */
async function httpRun(url: string, pid: number | (() => number), options: Partial<autocannon.Options>, seconds = SECONDS, idlePerSecond = 0): Promise<Figures> {
  const cpuOf = typeof pid === 'number' ? () => cpuOfPid(pid) : pid;
  const cpuBefore = cpuOf();
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, ...options });
  const cpu = cpuOf() - cpuBefore;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    non2xx: result.non2xx,
    cpuUs: cpu / Math.max(1, result.requests.total),
    netCpuUs: (cpu - idlePerSecond * seconds) / Math.max(1, result.requests.total),
  };
}

interface Server {
  url: string;
  pid: number;
  stop(): void;
}

/** Starts `node -e source` (given the port), resolving once it prints `ready`. */
async function startNodeServer(source: (port: number) => string, env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  let ready = false;
  const server = supervise('a comparison server', process.execPath, {
    args: ['-e', source(port)],
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    onLine: (line) => (ready ||= line === 'ready'),
  });
  await waitReady(server, async () => ready);
  return { url: `http://127.0.0.1:${port}`, pid: server.pid, stop: () => void server.stop(2000) };
}

/**
 * The least any HTTP service can do for the two requests: node:http and the driver, nothing else (no
 * validation, ids, limits, logs, metrics or errors worth the name). What the service costs over it is what
 * its framework and its features cost; what it costs over the driver is the floor of serving HTTP at all.
 */
function startFloorServer(uri: string, dbName: string): Promise<Server> {
  return startNodeServer(
    (port) => `
    const http = require('node:http');
    const { MongoClient } = require('mongodb');
    const data = new MongoClient(process.env.FLOOR_URI, { maxPoolSize: ${POOL} }).db(process.env.FLOOR_DB).collection('data');
    const send = (res, status, body) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(body); };
    http.createServer((req, res) => {
      if (req.method === 'POST') {
        const chunks = [];
        req.on('data', (chunk) => chunks.push(chunk));
        req.on('end', () => data.insertOne(JSON.parse(Buffer.concat(chunks).toString())).then(
          (result) => send(res, 201, JSON.stringify({ status: 'Data inserted', id: String(result.insertedId) })), () => send(res, 500, '{}')));
      } else if (req.url === '/data?limit=100') {
        data.find({}).sort({ _id: 1 }).limit(100).toArray().then((docs) => {
          for (const doc of docs) doc._id = undefined;
          send(res, 200, JSON.stringify(docs));
        }, () => send(res, 500, '{}'));
      } else {
        data.find({}, { projection: { _id: 0 } }).toArray().then((docs) => send(res, 200, JSON.stringify(docs)), () => send(res, 500, '{}'));
      }
    }).listen(${port}, '127.0.0.1', () => console.log('ready'));`,
    { FLOOR_URI: uri, FLOOR_DB: dbName },
  );
}

/** The framework floor: a bare node:http server answering a constant (reading POST bodies first). */
function startBareServer(): Promise<Server> {
  return startNodeServer(
    (port) => `
    const http = require('node:http');
    http.createServer((req, res) => {
      const answer = () => { res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' }); res.end('{"status":"ok"}'); };
      if (req.method === 'POST') { req.resume(); req.on('end', answer); } else answer();
    }).listen(${port}, '127.0.0.1', () => console.log('ready'));`,
  );
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

/** What the service is compared against, on one database. */
interface Comparison {
  database: string;
  results: Array<{
    name: string;
    service: Figures;
    driver: Figures;
    floor: Figures;
    bare: Figures;
    /** The guide's own Flask app under gunicorn, where it has the request and could be run. */
    guide?: Figures;
    /** service ÷ driver in each round */
    rounds: number[];
    /** Every round's figures, in the order taken */
    perRound: Array<Record<'service' | 'driver' | 'floor' | 'bare', Figures> & { guide?: Figures }>;
  }>;
  /** Why the guide's app was not run, when it was not. */
  guideMissing?: string;
}

/** The guide's app's venv (python), or why there is none: looked for once per run. */
type Guide = { python: string } | { missing: string };

/**
 * The CPU comparison on one database: the service, the raw driver in this process, the least an HTTP
 * server can do for the same request (node:http + the driver), a bare node:http answering a constant,
 * and the guide's own Flask app where python3 could build its venv (devkit/guide-app.ts).
 */
async function compareCpu(database: string, uri: string, seedData: boolean, bare: Server, guideVenv: Guide): Promise<Comparison> {
  const dbName = `bench_${Date.now()}`;
  const client = new MongoClient(uri, { maxPoolSize: POOL });
  const profileDir = process.env.BENCH_PROFILE;
  const servers: Server[] = [];
  try {
    const raw = client.db(dbName).collection('raw');
    if (seedData) {
      // The issue's setting: a 100-document collection, read whole (streamed) and as one page of 100.
      await seed(client.db(dbName).collection('data'), 100);
      await seed(raw, 100);
    }
    const service = await startServiceProcess(
      { MONGODB_URI: uri, MONGODB_DB: dbName, MONGODB_MAX_POOL_SIZE: String(POOL), LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' },
      { nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : [] },
    );
    servers.push({ url: service.url, pid: service.pid, stop: () => void service.stop() });
    const floor = await startFloorServer(uri, dbName);
    servers.push(floor);
    // The guide's app on the same database and collection as the service (its wsgi.py points it there).
    let guideMissing = 'missing' in guideVenv ? guideVenv.missing : undefined;
    let guide: (Server & { cpuUs: () => number }) | undefined;
    if ('python' in guideVenv) {
      try {
        const app = await startGuideApp(guideVenv.python, uri, dbName);
        guide = { url: app.url, pid: app.pid, cpuUs: app.cpuUs, stop: () => void app.stop() };
        servers.push(guide);
      } catch (error) {
        guideMissing = `it did not start: ${(error as Error).message.split('\n')[0]}`;
        console.log(`the guide's Flask app is not run on ${database}: ${guideMissing}`);
      }
    }
    console.log(`\n${database}: service ${service.url} (pid ${service.pid}); ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per run`);
    if (guide) console.log(`the guide's Flask app: ${guide.url} (gunicorn's master pid ${guide.pid}, one sync worker: gunicorn's defaults; CPU of the master and its workers)`);

    const body = JSON.stringify({ key: 'value', n: 1, nested: { ok: true } });
    const post = { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body };
    const page = async () => JSON.stringify(await raw.find({}).sort({ _id: 1 }).limit(100).toArray());
    const everything = async () => JSON.stringify(await raw.find({}, { projection: { _id: 0 } }).toArray());
    // Warm every path (JIT, connection pools) before measuring.
    await httpRun(`${service.url}/data?limit=100`, service.pid, {}, 2);
    await httpRun(`${floor.url}/data?limit=100`, floor.pid, {}, 2);
    await httpRun(`${bare.url}/`, bare.pid, {}, 1);
    await driverRun(page, 2);
    if (guide) await httpRun(`${guide.url}/data`, guide.cpuUs, {}, 2);

    const idle = {
      service: await idleRate(() => cpuOfPid(service.pid)),
      driver: await idleRate(ownCpu),
      floor: await idleRate(() => cpuOfPid(floor.pid)),
      bare: await idleRate(() => cpuOfPid(bare.pid)),
      guide: guide ? await idleRate(guide.cpuUs) : 0,
    };
    const perSecond = (us: number) => `${(us / 1000).toFixed(1)} ms/s`;
    console.log(`idle CPU: service ${perSecond(idle.service)}, bench process (driver) ${perSecond(idle.driver)}, node:http + driver ${perSecond(idle.floor)}, bare server ${perSecond(idle.bare)}`);
    if (guide) console.log(`idle CPU of the guide's app (gunicorn's master and worker): ${perSecond(idle.guide)}`);
    // The guide's app has no ?limit (it answers every document whatever the query): no page to compare.
    const guideRun = (options: Partial<autocannon.Options>) => (guide ? () => httpRun(`${guide.url}/data`, guide.cpuUs, options, SECONDS, idle.guide) : undefined);

    // GETs first, while both collections hold exactly 100 documents (FerretDB sorts in memory, so a page
    // costs more as the collection grows: see the scale part); POST afterwards.
    const results: Comparison['results'] = [];
    const operations = [
      {
        name: 'GET /data?limit=100 ↔ find().toArray()+JSON.stringify',
        service: () => httpRun(`${service.url}/data?limit=100`, service.pid, {}, SECONDS, idle.service),
        driver: () => driverRun(page, SECONDS, idle.driver),
        floor: () => httpRun(`${floor.url}/data?limit=100`, floor.pid, {}, SECONDS, idle.floor),
        bare: () => httpRun(`${bare.url}/`, bare.pid, {}, SECONDS, idle.bare),
        guide: undefined,
      },
      {
        name: 'GET /data (all 100, streamed) ↔ find().toArray()+JSON.stringify',
        service: () => httpRun(`${service.url}/data`, service.pid, {}, SECONDS, idle.service),
        driver: () => driverRun(everything, SECONDS, idle.driver),
        floor: () => httpRun(`${floor.url}/data`, floor.pid, {}, SECONDS, idle.floor),
        bare: () => httpRun(`${bare.url}/`, bare.pid, {}, SECONDS, idle.bare),
        guide: guideRun({}),
      },
      {
        name: 'POST /data ↔ insertOne',
        service: () => httpRun(`${service.url}/data`, service.pid, post, SECONDS, idle.service),
        driver: () => driverRun(() => raw.insertOne(JSON.parse(body)), SECONDS, idle.driver),
        floor: () => httpRun(`${floor.url}/data`, floor.pid, post, SECONDS, idle.floor),
        bare: () => httpRun(`${bare.url}/`, bare.pid, post, SECONDS, idle.bare),
        guide: guideRun(post),
      },
    ];
    for (const operation of operations) {
      // Rounds taken in turn, so that a drift of the machine (another process, the database's own state)
      // falls on every column alike; the median of each column is reported.
      const rounds: Comparison['results'][number]['perRound'] = [];
      for (let round = 0; round < ROUNDS; round++) {
        rounds.push({ service: await operation.service(), driver: await operation.driver(), floor: await operation.floor(), bare: await operation.bare() });
        if (operation.guide) rounds[round].guide = await operation.guide();
      }
      const column = (key: 'service' | 'driver' | 'floor' | 'bare') => medianFigures(rounds.map((round) => round[key]));
      results.push({
        name: operation.name,
        service: column('service'),
        driver: column('driver'),
        floor: column('floor'),
        bare: column('bare'),
        guide: operation.guide ? medianFigures(rounds.map((round) => round.guide!)) : undefined,
        rounds: rounds.map((round) => round.service.cpuUs / round.driver.cpuUs),
        perRound: rounds,
      });
    }
    printComparison({ database, results, guideMissing });
    return { database, results, guideMissing };
  } finally {
    for (const server of servers) server.stop();
    await client.db(dbName).dropDatabase().catch(() => undefined);
    await client.close();
  }
}

const signed = (value: number): string => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(0)}`;

function printComparison({ database, results, guideMissing }: Comparison): void {
  console.log(`\nthroughput on ${database} (all processes share the same cores)`);
  console.log(
    table([
      ['operation', 'service r/s', 'p50 ms', 'p99 ms', 'non-2xx', 'driver op/s', 'p50 ms', 'p99 ms', 'failed', 'node:http + driver r/s', 'non-2xx', 'bare node:http r/s', 'non-2xx'],
      ...results.map(({ name, service, driver, floor, bare }) => [
        name,
        service.rps.toFixed(0),
        service.p50.toFixed(1),
        service.p99.toFixed(1),
        service.non2xx,
        driver.rps.toFixed(0),
        driver.p50.toFixed(1),
        driver.p99.toFixed(1),
        driver.errors,
        floor.rps.toFixed(0),
        floor.non2xx,
        bare.rps.toFixed(0),
        bare.non2xx,
      ]),
    ]),
  );
  console.log(`\nCPU per request on ${database}: the service process (from /proc) against the driver's own client CPU per operation`);
  console.log(
    table([
      ['operation', 'service µs', 'driver µs', 'node:http + driver µs', 'bare node:http µs', 'service − driver', 'service ÷ driver', 'paired ÷', 'node:http + driver − driver', 'net of idle: service', 'driver', '−', '÷'],
      ...results.map(({ name, service, driver, floor, bare, rounds }) => [
        name,
        service.cpuUs.toFixed(0),
        driver.cpuUs.toFixed(0),
        floor.cpuUs.toFixed(0),
        bare.cpuUs.toFixed(0),
        signed(service.cpuUs - driver.cpuUs),
        `${(service.cpuUs / driver.cpuUs).toFixed(2)}×`,
        `${median(rounds).toFixed(2)}×`,
        signed(floor.cpuUs - driver.cpuUs),
        service.netCpuUs.toFixed(0),
        driver.netCpuUs.toFixed(0),
        signed(service.netCpuUs - driver.netCpuUs),
        `${(service.netCpuUs / driver.netCpuUs).toFixed(2)}×`,
      ]),
    ]),
  );
  // Two ratios: of the columns' medians, and the median of each round's own ratio (service and driver
  // measured seconds apart, so a drift of the machine between rounds falls on both).
  console.log(`(medians of ${ROUNDS} rounds; "paired ÷" is the median of each round's service ÷ driver: ${results.map(({ name, rounds }) => `${name.split(' ↔')[0]} ${rounds.map((ratio) => `${ratio.toFixed(2)}×`).join(', ')}`).join('; ')})`);
  for (const { name, service, driver, floor, bare } of results) {
    if (service.errors || driver.errors || floor.errors || bare.errors) {
      console.log(`  ${name} errors: service ${service.errors}, driver ${driver.errors}, node:http + driver ${floor.errors}, bare ${bare.errors}`);
    }
  }
  printGuide(database, results, guideMissing);
}

/** The guide's own app beside the service and the two floors (a table of its own: the ones above keep their shape). */
function printGuide(database: string, results: Comparison['results'], guideMissing?: string): void {
  if (guideMissing) {
    console.log(`\nthe guide's Flask app on ${database}: not run (${guideMissing})`);
    return;
  }
  console.log(`\nCPU per request on ${database}: the guide's own Flask app (gunicorn, one sync worker; its master's and worker's CPU from /proc) beside the service and the floors`);
  const dash = '—';
  console.log(
    table([
      ['operation', 'service µs', 'node:http + driver µs', 'bare node:http µs', 'guide µs', 'service ÷ guide', 'paired ÷', 'guide r/s', 'p50 ms', 'non-2xx', 'net of idle: guide'],
      ...results.map(({ name, service, floor, bare, guide, perRound }) => [
        name.split(' ↔')[0],
        service.cpuUs.toFixed(0),
        floor.cpuUs.toFixed(0),
        bare.cpuUs.toFixed(0),
        ...(guide
          ? [
              guide.cpuUs.toFixed(0),
              `${(service.cpuUs / guide.cpuUs).toFixed(2)}×`,
              `${median(perRound.map((round) => round.service.cpuUs / round.guide!.cpuUs)).toFixed(2)}×`,
              guide.rps.toFixed(0),
              guide.p50.toFixed(1),
              guide.non2xx,
              guide.netCpuUs.toFixed(0),
            ]
          : Array(7).fill(dash)),
      ]),
    ]),
  );
  console.log(`(${dash}: the guide's app has no limit parameter, it answers every document whatever the query: its GET /data is the row below)`);
  for (const { name, guide } of results) {
    if (guide?.errors) console.log(`  ${name.split(' ↔')[0]} errors: guide ${guide.errors}`);
  }
}

/** Median of `count` sequential runs of `work`, in ms. */
async function medianMs(count: number, work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let n = 0; n < count; n++) {
    const started = process.hrtime.bigint();
    await work();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return median(times);
}

/**
 * What a page costs as the collection grows: the first page and one from the middle, at 1 000 and at
 * 20 000 documents, one client at a time (the service's answer time and its CPU per page, and the raw
 * driver's query alone); and the plan the database gives the page's query (`explain`).
 */
async function measureScale(database: string, uri: string): Promise<{ rows: Array<Array<string | number>>; explain: unknown }> {
  const dbName = `bench_${Date.now()}`;
  const client = new MongoClient(uri, { maxPoolSize: POOL });
  const service = await startServiceProcess({ MONGODB_URI: uri, MONGODB_DB: dbName, MONGODB_MAX_POOL_SIZE: String(POOL), LOG_LEVEL: 'warn' });
  const rows: Array<Array<string | number>> = [['documents', 'page', 'service ms (median of 15)', 'service CPU µs per page', 'raw driver find ms', 'status']];
  let explain: unknown;
  try {
    const data = client.db(dbName).collection('data');
    for (const size of [1000, 20_000]) {
      await seed(data, size - (await data.countDocuments()));
      const middle = (await data.find({}, { projection: { _id: 1 } }).sort({ _id: 1 }).skip(size / 2).limit(1).next())?._id;
      for (const [label, after] of [['first', undefined], ['middle', middle]] as const) {
        const query = `/data?limit=100${after ? `&after=${String(after)}` : ''}`;
        let status = 0;
        await request(`${service.url}${query}`, 'GET'); // warm
        const cpuBefore = cpuOfPid(service.pid);
        const ms = await medianMs(15, async () => (status = (await request(`${service.url}${query}`, 'GET')).status));
        const cpuUs = (cpuOfPid(service.pid) - cpuBefore) / 15;
        const filter = after ? { _id: { $gt: after } } : {};
        const driverMs = await medianMs(15, () => data.find(filter).sort({ _id: 1 }).hint({ _id: 1 }).limit(101).toArray());
        rows.push([size, label, ms.toFixed(1), cpuUs.toFixed(0), driverMs.toFixed(1), status]);
      }
      if (size === 20_000 && middle) explain = await data.find({ _id: { $gt: middle } }).sort({ _id: 1 }).hint({ _id: 1 }).limit(101).explain();
    }
    console.log(`
a page of 100 as the collection grows, on ${database} (one client at a time)`);
    console.log(table(rows));
    console.log(`
the page's query, find({_id: {$gt: …}}).sort({_id: 1}).hint({_id: 1}).limit(101), explained by ${database}:`);
    console.log(JSON.stringify(explain, null, 1).split('\n').slice(0, 40).join('\n'));
    return { rows, explain };
  } finally {
    await service.stop();
    await client.db(dbName).dropDatabase().catch(() => undefined);
    await client.close();
  }
}

/** Peak RSS of the service in the worst cases its limits allow (and a few just past them), 4 at once. */
async function measureMemory(uri: string): Promise<{ freshIdle: number; idleBefore: number; cases: Array<[string, string]> }> {
  const dbName = `bench_${Date.now()}`;
  const client = new MongoClient(uri, { maxPoolSize: POOL });
  const service = await startServiceProcess({ MONGODB_URI: uri, MONGODB_DB: dbName, MONGODB_MAX_POOL_SIZE: String(POOL), LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' });
  const memory: Array<[string, string]> = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const freshIdle = await rssOf(service.pid);
    // The load the CPU comparison puts on a service first, so that "idle after load" means the same.
    await seed(client.db(dbName).collection('data'), 1000);
    await httpRun(`${service.url}/data?limit=100`, service.pid, {}, 3);
    const data = client.db(dbName).collection('data');
    await data.deleteMany({});
    const idleBefore = await rssOf(service.pid);
    const tinyDocs = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i, pad: 'x'.repeat(1000) })));
    const overDocs = `[${'{},'.repeat(349_000)}{}]`; // ~1 MiB of empty documents: refused (MAX_BULK_DOCUMENTS), after parsing
    const wideDoc = JSON.stringify({ values: Array.from({ length: 9_990 }, (_, i) => i * 1.5) });
    const four = <T>(work: () => Promise<T>) => Promise.all(Array.from({ length: 4 }, work));
    const bulk = await peakRss(service.pid, () => four(() => request(`${service.url}/data`, 'POST', tinyDocs)));
    memory.push([`4 × POST of 1000 documents (${mb(tinyDocs.length)} each)`, `${mb(bulk.peak)} (${bulk.result.map((r) => r.status).join(',')})`]);
    const over = await peakRss(service.pid, () => four(() => request(`${service.url}/data`, 'POST', overDocs)));
    memory.push([`4 × POST of 349 001 empty documents (${mb(overDocs.length)} each, refused)`, `${mb(over.peak)} (${over.result.map((r) => r.status).join(',')})`]);
    const wide = await peakRss(service.pid, () => four(() => request(`${service.url}/data`, 'POST', wideDoc)));
    memory.push([`4 × POST of one document with 9 990 values`, `${mb(wide.peak)} (${wide.result.map((r) => r.status).join(',')})`]);

    // Documents near the 1 MiB body limit: a cursor asks for 101 at a time, and MongoDB sends at most 16 MiB
    // of them per batch (FerretDB, which has no such cap, all 60: docs/stand-ins.md), so more than on MongoDB.
    await data.deleteMany({});
    for (let n = 0; n < 60; n++) await request(`${service.url}/data`, 'POST', JSON.stringify({ n, blob: 'y'.repeat(1000 * 1000) }));
    const stored = await peakRss(service.pid, () => four(() => request(`${service.url}/data?limit=1000`, 'GET')));
    memory.push([`4 × GET /data?limit=1000 over 60 documents of 1 MB`, `${mb(stored.peak)} (${stored.result.map((r) => `${r.status}:${mb(r.bytes)}`).join(', ')})`]);
    const storedStreams = await peakRss(service.pid, () => four(() => request(`${service.url}/data`, 'GET')));
    memory.push([`4 × GET /data (streamed) over the same`, `${mb(storedStreams.peak)} (${storedStreams.result.map((r) => `${r.status}:${mb(r.bytes)}`).join(', ')})`]);

    await data.deleteMany({});
    const seeded = Date.now();
    await seed(data, DOCS);
    console.log(`\nseeded ${DOCS} documents in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const one = await peakRss(service.pid, () => request(`${service.url}/data`, 'GET'));
    memory.push([`1 × GET /data streaming ${DOCS} documents`, `${mb(one.peak)} (${mb(one.result.bytes)} in ${one.ms} ms)`]);
    const streaming = await peakRss(service.pid, () => four(() => request(`${service.url}/data`, 'GET')));
    memory.push([`4 × GET /data streaming ${DOCS} documents`, `${mb(streaming.peak)} (${streaming.ms} ms)`]);

    console.log(`\nservice RSS: idle at start ${mb(freshIdle)}, idle after load ${mb(idleBefore)}; peaks (Kubernetes limit 500Mi = 524 MB):`);
    console.log(table([['case', 'peak RSS (statuses)'], ...memory]));
    return { freshIdle, idleBefore, cases: memory };
  } finally {
    await service.stop();
    await client.db(dbName).dropDatabase().catch(() => undefined);
    await client.close();
  }
}

async function main(): Promise<void> {
  const load = () => os.loadavg().map((value) => value.toFixed(2)).join(', ');
  console.log(`load average at start (1, 5, 15 min): ${load()} on ${os.cpus().length} cores`);
  const db = await startTestDatabase((line) => console.log(`[db] ${line}`));
  const bare = await startBareServer();
  const stub = PARTS.has('cpu') && ON.has('stub') ? await startWireStub() : undefined;
  // Looked for once; without python3 (or its venv module) the other columns run all the same.
  const guide: Guide = !PARTS.has('cpu') || process.env.BENCH_GUIDE === '0' ? { missing: 'BENCH_GUIDE=0' } : ensureGuideVenv();
  if ('missing' in guide && PARTS.has('cpu')) console.log(`the guide's Flask app will not be run: ${guide.missing}`);
  try {
    const comparisons: Comparison[] = [];
    if (PARTS.has('cpu')) {
      if (ON.has('ferretdb')) comparisons.push(await compareCpu(`${db.kind} (the issue's setting)`, db.uri, true, bare, guide));
      if (stub) comparisons.push(await compareCpu('an instant-reply wire stub (clients busy: their own cost)', stub.uri, false, bare, guide));
    }
    const scale = PARTS.has('scale') ? await measureScale(db.kind, db.uri) : undefined;
    const memory = PARTS.has('memory') ? await measureMemory(db.uri) : undefined;

    const out = path.join(REPO_ROOT, 'bench-results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ seconds: SECONDS, connections: CONNECTIONS, database: db.kind, load: os.loadavg(), comparisons, scale, memory }, null, 2));
    console.log(`\nload average at the end: ${load()}; figures saved to ${path.relative(REPO_ROOT, file)}`);
  } finally {
    bare.stop();
    await stub?.stop();
    await db.stop();
    if (process.env.BENCH_PROFILE) console.log(`CPU profiles of the service written to ${process.env.BENCH_PROFILE}`);
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
