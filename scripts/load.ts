/**
 * `npm run load`: the guide's wrk run, done so you can see the HPA work.
 * Drives the service with autocannon while polling the HPA and Deployment,
 * prints a live line every interval and a final table, and writes an SVG chart
 * of replicas, CPU, throughput and p99 latency over time.
 *
 *   npm run load -- --url "$(pulumi stack output url)" --duration 120 --connections 100
 *
 * Flags: --url, --path (/), --duration s (60), --connections (50), --rate req/s
 * overall (0 = as fast as possible), --interval s (5), --context (minikube),
 * --namespace (koa-mongodb), --name (data-service), --out (load-report.svg).
 */
import autocannon from 'autocannon';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { svgChart } from './lib/chart';
import { connectScaleWatcher, type ScaleSample, type ScaleWatcher } from './lib/cluster';
import { summarize, table } from './lib/stats';
import { resolveServiceUrl } from './lib/target';

interface Window {
  t: number;
  /** Seconds this window covered (the last one is usually shorter). */
  seconds: number;
  requests: number;
  errors: number;
  latencies: number[];
  scale?: ScaleSample;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      path: { type: 'string', default: '/' },
      duration: { type: 'string', default: '60' },
      connections: { type: 'string', default: '50' },
      rate: { type: 'string', default: '0' },
      interval: { type: 'string', default: '5' },
      context: { type: 'string', default: 'minikube' },
      namespace: { type: 'string', default: 'koa-mongodb' },
      name: { type: 'string', default: 'data-service' },
      out: { type: 'string', default: 'load-report.svg' },
    },
  });
  const number = (name: keyof typeof values, min: number) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return value;
  };
  const duration = number('duration', 1);
  const connections = number('connections', 1);
  const rate = number('rate', 0);
  const interval = number('interval', 1);
  const target = `${resolveServiceUrl(values.url)}${values.path}`;

  let watcher: ScaleWatcher | undefined;
  try {
    watcher = await connectScaleWatcher({ context: values.context, namespace: values.namespace!, name: values.name! });
    console.log(`watching ${watcher.describe}`);
  } catch (error) {
    console.log(`no cluster reachable (${(error as Error).message}): the HPA columns stay empty; load figures only.`);
  }

  console.log(`load: ${target}, ${connections} connections, ${duration} s${rate ? `, ${rate} req/s` : ''}\n`);
  const windows: Window[] = [];
  let current: Window = { t: 0, seconds: 0, requests: 0, errors: 0, latencies: [] };
  const all: number[] = [];
  const started = Date.now();
  let windowStart = started;

  const instance = autocannon({ url: target, connections, duration, overallRate: rate || undefined }, () => undefined);
  (instance as unknown as NodeJS.EventEmitter).on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    current.requests++;
    current.latencies.push(ms);
    all.push(ms);
    if (status >= 400) current.errors++;
  });
  instance.on('reqError', () => current.errors++);

  const flush = async () => {
    const window = current;
    const now = Date.now();
    window.t = Math.round((now - started) / 1000);
    window.seconds = Math.max(0.001, (now - windowStart) / 1000);
    windowStart = now;
    current = { t: 0, seconds: 0, requests: 0, errors: 0, latencies: [] };
    window.scale = await watcher?.sample().catch(() => undefined);
    windows.push(window);
    const stats = summarize(window.latencies);
    const scale = window.scale
      ? `replicas ${window.scale.ready} ready/${window.scale.current} (wants ${window.scale.problem ? '?' : window.scale.desired}), cpu ${window.scale.cpuPercent ?? '?'}%` +
        (window.scale.problem ? ` [HPA cannot scale: ${window.scale.problem}; is metrics-server running?]` : '')
      : 'replicas ?';
    console.log(`t=${String(window.t).padStart(4)}s  ${scale}  ${(window.requests / window.seconds).toFixed(0)} req/s  p99 ${stats.p99.toFixed(0)} ms  errors ${window.errors}`);
  };
  const ticker = setInterval(() => void flush(), interval * 1000);
  const result = await new Promise<autocannon.Result>((resolve) => instance.on('done', resolve));
  clearInterval(ticker);
  if (current.requests > 0) await flush();

  const overall = summarize(all);
  const errors = windows.reduce((sum, w) => sum + w.errors, 0);
  console.log(`\n${table([
    ['t (s)', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'ready', 'replicas', 'desired', 'cpu %'],
    ...windows.map((w) => {
      const s = summarize(w.latencies);
      return [w.t, (w.requests / w.seconds).toFixed(0), s.p50.toFixed(0), s.p99.toFixed(0), w.errors, w.scale?.ready ?? '-', w.scale?.current ?? '-', w.scale?.desired ?? '-', w.scale?.cpuPercent ?? '-'];
    }),
  ])}`);
  const replicas = windows.map((w) => w.scale?.current).filter((r): r is number => r !== undefined);
  console.log(
    `\ntotal ${result.requests.total} requests, ${result.requests.average.toFixed(0)} req/s average, p50 ${overall.p50.toFixed(0)} ms, p99 ${overall.p99.toFixed(0)} ms, ` +
      `${errors} errors${replicas.length ? `, replicas ${Math.min(...replicas)} → ${Math.max(...replicas)}` : ''}`,
  );

  writeFileSync(
    values.out!,
    svgChart(`load on ${target}`, [
      { label: 'replicas (HPA current)', unit: 'pods', color: '#1f77b4', step: true, points: windows.map((w) => ({ t: w.t, v: w.scale?.current })) },
      { label: 'CPU (HPA average)', unit: '% of request', color: '#d62728', points: windows.map((w) => ({ t: w.t, v: w.scale?.cpuPercent })) },
      { label: 'throughput', unit: 'req/s', color: '#2ca02c', points: windows.map((w) => ({ t: w.t, v: w.requests / w.seconds })) },
      { label: 'p99 latency', unit: 'ms', color: '#ff7f0e', points: windows.map((w) => ({ t: w.t, v: summarize(w.latencies).p99 })) },
    ]),
  );
  console.log(`chart written to ${values.out}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`load: ${error.message}`);
    process.exit(2);
  },
);
