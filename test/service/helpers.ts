import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { REPO_ROOT } from '../../devkit/paths';
import { createApp, type App } from '../../service/src/app';
import { parseConfig } from '../../service/src/config';
import { createLogger } from '../../service/src/logger';
import { startServer, type RunningServer } from '../../service/src/server';
import { freePort } from '../../devkit/ports';
import { SERVICE_MAIN, startServiceProcess, type ServiceProcess } from '../../devkit/service-process';
import { eventually } from '../../devkit/wait';

export { SERVICE_MAIN, freePort };

export function dbUri(): string {
  const uri = process.env.TEST_MONGODB_URI;
  if (!uri) throw new Error('TEST_MONGODB_URI is not set: run through `npm run test:service`');
  return uri;
}

/**
 * The copy of the driver the service's code runs on (service/node_modules: the service is installed on its
 * own, as in its image). Tests that hand a collection to the store directly must build it with this copy:
 * the store tells errors apart with `instanceof` its own driver's classes, which the tests' copy (at the
 * root) fails. Same version, same types; only the classes' identities differ.
 */
export const serviceDriver = (): typeof import('mongodb') =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(require.resolve('mongodb', { paths: [path.join(REPO_ROOT, 'service')] })) as typeof import('mongodb');

/** A database name of its own per suite, so suites never see each other's data. */
export const uniqueDbName = (prefix: string): string => `${prefix}_${randomBytes(4).toString('hex')}`;

export interface InProcessService {
  url: string;
  app: App;
  raw: MongoClient;
  running: RunningServer;
  close(): Promise<void>;
}

/** The real app and server in this process, on a free port, against the test database. */
export async function startInProcess(env: Record<string, string> = {}): Promise<InProcessService> {
  const config = parseConfig({ MONGODB_URI: dbUri(), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', ...env });
  const logger = createLogger(config.logLevel);
  const app = createApp({ config, logger });
  const running = await startServer(app, logger, { ...config, shutdownTimeoutMs: 5000 });
  const raw = new MongoClient(dbUri());
  return {
    url: `http://127.0.0.1:${running.address.port}`,
    app,
    raw,
    running,
    async close() {
      await running.shutdown('test done');
      await raw.close();
    },
  };
}

export type SpawnedService = ServiceProcess;

/** The built service (service/dist/main.js) as its own process, as the image runs it; all its log lines kept. */
export const spawnService = (env: Record<string, string>): Promise<SpawnedService> => startServiceProcess(env, { keepLogs: true });

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with full control over headers and framing (fetch would fix them up). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer; chunks?: Array<string | Buffer> },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  // Bounded: an answer that never comes fails here, saying so, rather than as the test's timeout.
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Waits until `check` holds; resolves with how long that took, in ms. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000, everyMs = 100): Promise<number> {
  const started = Date.now();
  await eventually(what, check, { timeoutMs, everyMs });
  return Date.now() - started;
}
