/**
 * Issue 24's two figures, printed, not asserted (run against a built service and a database):
 *   memory: the service's peak RSS while 256 clients each POST a 1 MiB body at once, and how many were shed;
 *   writers: the latency of single POSTs while 100 clients read pages of a 10 MB collection.
 *
 *   MONGODB_URI=mongodb://127.0.0.1:27017/ npx tsx devkit/tools/hostile-measure.ts [service/dist/main.js] [memory|writers]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { freePort } from '../ports';
import { REPO_ROOT } from '../paths';

const uri = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/';
const main = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'service', 'dist', 'main.js'));
const only = process.argv[3];
const POSTS = Number(process.env.POSTS ?? 40);

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
function request(url: string, method: string, body?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method, agent, headers: body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function service(env: Record<string, string>): Promise<{ url: string; pid: number; stop(): void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [main], { env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), MONGODB_URI: uri, LOG_LEVEL: 'error', ...env }, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if ((await request(`${url}/readyz`, 'GET')) === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

const statusKb = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
const count = (statuses: number[]) => Object.entries(statuses.reduce<Record<number, number>>((all, s) => ({ ...all, [s]: (all[s] ?? 0) + 1 }), {})).map(([s, n]) => `${s}×${n}`).join(' ');

async function memory(): Promise<void> {
  const svc = await service({ MONGODB_DB: `measure_mem_${Date.now()}`, MEMORY_LIMIT_BYTES: String(500 * 1024 * 1024) });
  await request(`${svc.url}/data`, 'POST', Buffer.from('{"warm":1}'));
  const before = statusKb(svc.pid, 'VmRSS');
  const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(1024 * 1024 - 20) }));
  const started = Date.now();
  const statuses = await Promise.all(Array.from({ length: 256 }, () => request(`${svc.url}/data`, 'POST', body)));
  console.log(`memory: ${body.length}-byte bodies ×256 at once in ${Date.now() - started} ms: ${count(statuses)}; RSS ${Math.round(before / 1024)} MiB before, peak ${Math.round(statusKb(svc.pid, 'VmHWM') / 1024)} MiB`);
  svc.stop();
}

async function writers(): Promise<void> {
  const db = `measure_rw_${Date.now()}`;
  const client = new MongoClient(uri);
  const pad = 'p'.repeat(1000);
  for (let i = 0; i < 10; i++) await client.db(db).collection('data').insertMany(Array.from({ length: 1000 }, (_, n) => ({ n: i * 1000 + n, pad })));
  const svc = await service({ MONGODB_DB: db });
  let reading = true;
  const reads: number[] = [];
  const readers = Array.from({ length: 100 }, async () => {
    while (reading) reads.push(await request(`${svc.url}/data?limit=100`, 'GET'));
  });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const latencies: number[] = [];
  const posts: number[] = [];
  for (let n = 0; n < POSTS; n++) {
    const started = performance.now();
    posts.push(await request(`${svc.url}/data`, 'POST', Buffer.from(`{"writer":${n}}`)));
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  reading = false;
  await Promise.all(readers);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]);
  console.log(`writers: ${POSTS} single POSTs with 100 page readers: ${count(posts)}; p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms; page reads meanwhile: ${count(reads)}`);
  svc.stop();
  await client.db(db).dropDatabase();
  await client.close();
}

void (async () => {
  if (only !== 'writers') await memory();
  if (only !== 'memory') await writers();
  agent.destroy();
})();
