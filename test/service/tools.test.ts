import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dbUri, freePort, spawnService, uniqueDbName, type SpawnedService } from './helpers';
import { scratchDir } from '../../devkit/scratch';

const ROOT = path.resolve(__dirname, '..', '..');

/** Runs one of scripts/*.ts as `npm run` would, and collects its output and exit code. */
function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'scripts', script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('operating tools against a local service', function () {
  this.timeout(120_000);
  let svc: SpawnedService;
  before(async () => {
    svc = await spawnService({ MONGODB_URI: dbUri(), MONGODB_DB: uniqueDbName('tools'), LOG_LEVEL: 'warn' });
  });
  after(async () => {
    svc.kill();
    await svc.exited;
  });

  it('db-load inserts 500 documents one per request and finds each exactly once', async () => {
    const { code, output } = await runScript('db-load.ts', ['--url', svc.url, '--count', '500', '--concurrency', '25']);
    assert.equal(code, 0, output);
    assert.match(output, /verified: 500 present, 0 lost, 0 doubled, 0 failed inserts/);
    assert.match(output, /docs\/s/);
  });

  it('db-load in bulk mode (arrays of 100) does the same in far fewer requests', async () => {
    const { code, output } = await runScript('db-load.ts', ['--url', svc.url, '--count', '1000', '--concurrency', '4', '--bulk', '100']);
    assert.equal(code, 0, output);
    assert.match(output, /^10\s+1000\s/m, '10 requests for 1000 documents');
    assert.match(output, /verified: 1000 present, 0 lost, 0 doubled, 0 failed inserts/);
  });

  it('db-load fails (exit 1) and says why when inserts fail', async () => {
    const down = await spawnService({ MONGODB_URI: `mongodb://127.0.0.1:${await freePort()}/`, MONGODB_SERVER_SELECTION_TIMEOUT_MS: '200', LOG_LEVEL: 'warn' });
    try {
      const { code, output } = await runScript('db-load.ts', ['--url', down.url, '--count', '5', '--concurrency', '5']);
      assert.notEqual(code, 0, output);
      assert.match(output, /failed: 5 documents \(HTTP 503\)/);
    } finally {
      down.kill();
      await down.exited;
    }
  });

  it('load drives the service, prints live lines and a table, writes the chart, and says no cluster is reachable', async () => {
    const out = path.join(scratchDir('load-'), 'report.svg');
    const { code, output } = await runScript('load.ts', ['--url', svc.url, '--duration', '4', '--interval', '1', '--connections', '10', '--out', out], {
      KUBECONFIG: path.join(os.tmpdir(), 'no-such-kubeconfig'),
    });
    assert.equal(code, 0, output);
    assert.match(output, /no cluster reachable \(.+\): the HPA columns stay empty; load figures only\./);
    assert.match(output, /^t=\s+\d+s\s+replicas \?\s+\d+ req\/s\s+p99 \d+ ms\s+errors 0$/m);
    assert.match(output, /^t \(s\)\s+req\/s\s+p50 ms\s+p99 ms\s+errors/m);
    const total = Number(/total (\d+) requests/.exec(output)?.[1]);
    assert.ok(total > 100, `${total} requests`);
    assert.ok(existsSync(out));
    const svg = readFileSync(out, 'utf8');
    assert.match(svg, /^<svg /);
    assert.match(svg, /throughput/);
    assert.match(svg, /<path d="M/, 'throughput and latency are drawn');
  });

  it('load refuses bad flags clearly', async () => {
    const { code, output } = await runScript('load.ts', ['--url', svc.url, '--duration', 'soon']);
    assert.equal(code, 2);
    assert.match(output, /--duration must be a number/);
  });
});
