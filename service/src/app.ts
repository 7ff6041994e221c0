import Koa from 'koa';
import cors from '@koa/cors';
import Router from '@koa/router';
import type { MongoSettings, ServiceConfig } from './config';
import type { Database } from './db';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { errorHandler } from './middleware/errors';
import { requestContext } from './middleware/requestContext';
import { dataRouter } from './routes/data';
import { healthRouter, type Lifecycle } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { rootRouter } from './routes/root';
import { createDataStore, type DataStore } from './store/dataStore';

export interface AppDeps {
  db: Pick<Database, 'collection'>;
  logger: Logger;
  config: Pick<ServiceConfig, 'bodyLimitBytes' | 'bodyBudgetBytes' | 'corsOrigins' | 'readyTimeoutMs' | 'limits' | 'metrics'> & { mongo: Pick<MongoSettings, 'serverSelectionTimeoutMs' | 'operationTimeoutMs'> };
  metrics?: Metrics;
  lifecycle?: Lifecycle;
}

export interface App {
  koa: Koa;
  /** The internal listener's app (see server.ts): the probes, and /metrics unless turned off. */
  internal: Koa;
  metrics: Metrics;
  lifecycle: Lifecycle;
  store: DataStore;
}

/** Builds the HTTP application from its parts; listening and signals belong to main.ts. */
export function createApp({ db, logger, config, metrics = createMetrics(), lifecycle = { draining: false } }: AppDeps): App {
  const koa = new Koa();
  // Errors are logged by errorHandler; only failures after the response began
  // (a stream cut off mid-way) reach Koa's own handler.
  koa.silent = true;
  koa.on('error', (error: Error) => {
    logger.warn({ err: error }, 'response aborted after it started');
  });

  const store = createDataStore(db, metrics, {
    ...config.limits,
    // The server ends a page's query at this (code 50), before the socket timeout would (see db.ts).
    queryTimeoutMs: config.mongo.operationTimeoutMs,
    // Past every timeout of the driver's own (finding a server, then one round trip): only a hang gets there.
    operationDeadlineMs: config.mongo.serverSelectionTimeoutMs + config.mongo.operationTimeoutMs + 1500,
  });
  const allowAny = config.corsOrigins.includes('*');
  koa.use(requestContext(logger, metrics, lifecycle));
  koa.use(errorHandler(logger));
  const corsMiddleware = cors({
    origin: (ctx) => {
      if (allowAny) return '*';
      const origin = ctx.get('Origin');
      return config.corsOrigins.includes(origin) ? origin : '';
    },
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    exposeHeaders: ['X-Next-Cursor', 'Link', 'X-Request-Id'],
    maxAge: 600,
  });
  // A request without an Origin header (nearly all of them) has nothing for CORS to do but `Vary: Origin`,
  // which keeps a shared cache from handing its answer to a cross-origin request: set directly, it skips
  // the middleware's header parsing on every request.
  koa.use((ctx, next) => {
    if (ctx.req.headers.origin !== undefined) return corsMiddleware(ctx, next);
    ctx.res.setHeader('Vary', 'Origin');
    return next();
  });

  // One router per resource, mounted on one root so that 405/501 answers
  // (allowedMethods) know every route.
  // Strict: /data/ and /DATA are not /data (nor echoed in its Link header).
  const api = new Router({ strict: true, sensitive: true });
  const routers = [
    rootRouter(),
    dataRouter({
      store,
      bodyLimitBytes: config.bodyLimitBytes,
      bodyBudget: { limitBytes: config.bodyBudgetBytes, held: 0 },
      documentLimits: config.limits,
      pageMaxChars: config.limits.pageMaxBytes,
      streamStallTimeoutMs: config.limits.streamStallTimeoutMs,
      streamMaxMs: config.limits.streamMaxMs,
    }),
  ];
  const health = () => healthRouter((timeoutMs) => store.probe(timeoutMs), lifecycle, config.readyTimeoutMs, logger);
  // The probes on the public port too (for curl and `npm run up`'s checks), though Kubernetes uses the internal one.
  routers.push(health());
  // /metrics on the public port only when it has no port of its own (see server.ts) and is not turned off.
  if (config.metrics.port === undefined && config.metrics.path !== '') routers.push(metricsRouter(metrics, config.metrics.path));
  for (const router of routers) {
    api.use(router.routes());
  }
  koa.use(api.routes());
  koa.use(api.allowedMethods());

  const internal = new Koa();
  internal.silent = true;
  const inside = new Router({ strict: true, sensitive: true });
  inside.use(health().routes());
  if (config.metrics.path !== '') inside.use(metricsRouter(metrics, config.metrics.path).routes());
  internal.use(errorHandler(logger));
  internal.use((ctx, next) => {
    ctx.res.setHeader('X-Content-Type-Options', 'nosniff');
    return next();
  });
  internal.use(inside.routes());
  return { koa, internal, metrics, lifecycle, store };
}
