/**
 * `npm run db-load`: the guide's 1000-insert script, done properly. Inserts N
 * documents through the API (one per request, or in bulk arrays), with a set
 * concurrency, then reads every page back and checks that none is lost or
 * doubled. Exits 1 if any insert failed or the read-back does not match.
 *
 *   npm run db-load -- --url "$(pulumi stack output url)" --count 1000 --concurrency 20 [--bulk 100]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { summarize, table } from './lib/stats';
import { resolveServiceUrl } from './lib/target';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      count: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '10' },
      bulk: { type: 'string', default: '0' },
    },
  });
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const bulk = Number(values.bulk);
  if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a whole number ≥ 1');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a whole number ≥ 1');
  if (!Number.isInteger(bulk) || bulk < 0) throw new Error('--bulk must be a whole number ≥ 0 (0 = one document per request)');
  const base = resolveServiceUrl(values.url);
  const run = randomUUID();

  // The work: batches of sequence numbers, one request each.
  const size = bulk > 0 ? bulk : 1;
  const batches: number[][] = [];
  for (let seq = 0; seq < count; seq += size) batches.push(Array.from({ length: Math.min(size, count - seq) }, (_, i) => seq + i));

  console.log(`inserting ${count} documents into ${base}/data, ${concurrency} at a time, ${bulk > 0 ? `bulk arrays of ${bulk}` : 'one per request'} (run ${run})`);
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, batches.length) }, async () => {
      while (next < batches.length) {
        const batch = batches[next++];
        const docs = batch.map((seq) => ({ key: `value${seq}`, run, seq }));
        const t0 = performance.now();
        try {
          const res = await fetch(`${base}/data`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(bulk > 0 ? docs : docs[0]),
          });
          await res.arrayBuffer();
          if (res.status !== 201) failures.set(`HTTP ${res.status}`, (failures.get(`HTTP ${res.status}`) ?? 0) + batch.length);
        } catch (error) {
          const reason = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
          failures.set(reason, (failures.get(reason) ?? 0) + batch.length);
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const stats = summarize(latencies);
  console.log(
    table([
      ['requests', 'documents', 'seconds', 'docs/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
      [latencies.length, count, seconds.toFixed(2), (count / seconds).toFixed(0), stats.p50.toFixed(1), stats.p95.toFixed(1), stats.p99.toFixed(1), stats.max.toFixed(1)],
    ]),
  );
  for (const [reason, docs] of failures) console.log(`  failed: ${docs} documents (${reason})`);

  // Read everything back a page at a time and count this run's documents.
  const seen = new Map<number, number>();
  let pages = 0;
  let url: string | undefined = `${base}/data?limit=1000`;
  const readStarted = Date.now();
  while (url) {
    const res: Response = await fetch(url);
    if (res.status !== 200) throw new Error(`reading back: GET ${url} answered ${res.status}`);
    const page = (await res.json()) as Array<{ run?: string; seq?: number }>;
    pages++;
    for (const doc of page) if (doc.run === run && typeof doc.seq === 'number') seen.set(doc.seq, (seen.get(doc.seq) ?? 0) + 1);
    const cursor = res.headers.get('x-next-cursor');
    url = cursor ? `${base}/data?limit=1000&after=${cursor}` : undefined;
  }
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  const lost = Array.from({ length: count }, (_, seq) => seq).filter((seq) => !seen.has(seq));
  const doubled = [...seen].filter(([, times]) => times > 1).map(([seq]) => seq);
  console.log(`read back ${[...seen.values()].reduce((a, b) => a + b, 0)} of this run's documents in ${pages} pages (${((Date.now() - readStarted) / 1000).toFixed(2)} s)`);
  console.log(`verified: ${count - lost.length} present, ${lost.length} lost, ${doubled.length} doubled, ${failed} failed inserts`);
  if (lost.length > 0) console.log(`  lost seq: ${lost.slice(0, 20).join(', ')}${lost.length > 20 ? ' …' : ''}`);
  if (doubled.length > 0) console.log(`  doubled seq: ${doubled.slice(0, 20).join(', ')}`);
  // A failed insert that was stored anyway would show up as present; only what the API acknowledged must be there.
  return lost.length === 0 && doubled.length === 0 && failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`db-load: ${error.message}`);
    process.exit(2);
  },
);
