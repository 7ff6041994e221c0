/**
 * Rates and memory of `npm run backup` and `npm run restore` against the local database (FerretDB v1.24.2
 * as the tests start it, or MONGODB_URI): for each size, seeds a database, then runs each tool as its own
 * process and prints documents/s, MB/s (of canonical Extended JSON) and the process's peak RSS.
 * Figures, not assertions: see docs/backup.md for measured ones.
 *
 *   npx tsx test/scripts/backup-bench.ts [--sizes 20000,100000] [--heap MB]
 *
 * --heap caps each tool's V8 old space (--max-old-space-size): the run completes only if memory stays bounded.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Double, Int32, Long, MongoClient, ObjectId } from 'mongodb';
import { startTestDatabase } from '../../devkit/database';

const ROOT = path.resolve(__dirname, '..', '..');

/** Left-aligned text table. */
function table(rows: Array<Array<string | number>>): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => String(row[column]).length)));
  return rows.map((row) => row.map((cell, column) => String(cell).padEnd(widths[column])).join('  ')).join('\n');
}

interface Measured {
  ms: number;
  rssMb: number;
  stdout: string;
}

/** Runs scripts/<tool>.ts in one node process (tsx as a preload) and reads its peak RSS as it exits. */
function measure(tool: string, args: string[], env: Record<string, string>, dir: string, heapMb?: number): Promise<Measured> {
  const rssFile = path.join(dir, `${tool}.rss`);
  const preload = path.join(dir, 'rss.cjs');
  writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(heapMb ? [`--max-old-space-size=${heapMb}`] : []), '--require', 'tsx/cjs', '--require', preload, path.join(ROOT, 'scripts', `${tool}.ts`), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${tool} exited ${code}: ${stdout}`));
      resolve({ ms: Date.now() - started, rssMb: Number(readFileSync(rssFile, 'utf8')) / 1024, stdout });
    });
  });
}

/** Documents like the service's, with a spread of types: about 330 bytes each as Extended JSON. */
function document(i: number): Record<string, unknown> {
  return {
    _id: new ObjectId(),
    name: `item ${i} ${'x'.repeat(i % 40)}`,
    count: new Int32(i),
    total: Long.fromString(String(2 ** 53 + i)),
    price: new Double(i / 7),
    at: new Date(1_700_000_000_000 + i),
    tags: ['a', 'b', 'c'].slice(0, i % 4),
    meta: { source: 'bench', n: i % 10, ok: i % 2 === 0 },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '20000,100000' }, heap: { type: 'string' } } });
  const heap = values.heap ? Number(values.heap) : undefined;
  const sizes = values.sizes!.split(',').map(Number);
  const database = await startTestDatabase((line) => console.log(`[db] ${line}`));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backup-bench-'));
  const client = new MongoClient(database.uri);
  const rows: Array<Array<string | number>> = [['documents', 'step', 'seconds', 'documents/s', 'MB/s', 'peak RSS MB', 'file MB']];
  try {
    for (const size of sizes) {
      const name = `bench_${size}`;
      const db = client.db(name);
      await db.dropDatabase();
      const seeding = Date.now();
      for (let i = 0; i < size; i += 1000) {
        await db.collection('data').insertMany(Array.from({ length: Math.min(1000, size - i) }, (_, j) => document(i + j)) as never[], { ordered: false });
      }
      await db.collection('data').createIndex({ at: 1 });
      console.log(`seeded ${size} documents in ${((Date.now() - seeding) / 1000).toFixed(1)} s`);
      const env = { MONGODB_URI: database.uri, MONGODB_DB: name };
      const file = path.join(dir, `${name}.jsonl.gz`);
      const backup = await measure('backup', ['--out', file], env, dir, heap);
      const bytes = Number(/ (\d+) bytes (?:\([^)]*\) )?of Extended JSON/.exec(backup.stdout)?.[1] ?? NaN);
      const fileMb = statSync(file).size / 1e6;
      const check = await measure('restore', ['--in', file, '--check'], env, dir, heap);
      const restore = await measure('restore', ['--in', file, '--drop'], env, dir, heap);
      for (const [step, run] of [
        ['backup', backup],
        ['restore --check', check],
        ['restore --drop', restore],
      ] as const) {
        rows.push([size, step, (run.ms / 1000).toFixed(1), Math.round(size / (run.ms / 1000)), (bytes / 1e6 / (run.ms / 1000)).toFixed(1), run.rssMb.toFixed(0), fileMb.toFixed(1)]);
      }
      console.log(backup.stdout.trim());
      console.log(restore.stdout.trim());
      await db.dropDatabase();
    }
    console.log(`\n${database.kind} at ${database.uri};${heap ? ` tools run with --max-old-space-size=${heap};` : ''} ${os.cpus().length} CPUs, load average ${os.loadavg().map((n) => n.toFixed(1)).join(' ')}; wall-clock including each tool's start (about 1 s)`);
    console.log(table(rows));
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
    await database.stop();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
