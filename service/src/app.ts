import { randomUUID } from 'node:crypto';
import Koa, { type Middleware } from 'koa';
import cors from '@koa/cors';
import Router from '@koa/router';
import type { ServiceConfig } from './config';
import { createDatabase, type Database } from './db';
import { errorHandler } from './errors';
import { requestLogger, type Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { dataRouter } from './routes/data';
import { healthRouter, type Lifecycle } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { rootRouter } from './routes/root';
import { createDataStore } from './store/dataStore';

export interface AppDeps {
  config: Pick<ServiceConfig, 'bodyLimitBytes' | 'bodyBudgetBytes' | 'corsOrigins' | 'readyTimeoutMs' | 'limits' | 'metrics' | 'mongo'>;
  logger: Logger;
  /** The database; by default the process's own client, made from `config.mongo`. */
  db?: Database;
  metrics?: Metrics;
  lifecycle?: Lifecycle;
}

export type App = ReturnType<typeof createApp>;

/** Builds the HTTP application from its parts; listening and signals belong to server.ts and main.ts. */
export function createApp({ config, logger, db = createDatabase(config.mongo, logger), metrics = createMetrics(), lifecycle = { draining: false } }: AppDeps) {
  const koa = new Koa();
  // Errors are logged by errorHandler; only failures after the response began (a stream cut off mid-way) reach Koa's own handler.
  koa.silent = true;
  koa.on('error', (error: Error) => logger.warn({ err: error }, 'response aborted after it started'));

  const store = createDataStore(db, metrics, {
    ...config.limits,
    // The server ends a page's query at this (code 50), before the socket timeout would (see db.ts).
    queryTimeoutMs: config.mongo.operationTimeoutMs,
    // Past every timeout of the driver's own (finding a server, then one round trip): only a hang gets there.
    operationDeadlineMs: config.mongo.serverSelectionTimeoutMs + config.mongo.operationTimeoutMs + 1500,
  });
  koa.use(requestContext(logger, metrics, lifecycle));
  koa.use(errorHandler(logger));
  const allowAny = config.corsOrigins.includes('*');
  const corsMiddleware = cors({
    origin: (ctx) => (allowAny ? '*' : config.corsOrigins.includes(ctx.get('Origin')) ? ctx.get('Origin') : ''),
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

  // One router per resource, mounted on one root so that 405/501 answers (allowedMethods) know every route.
  // Strict: /data/ and /DATA are not /data (nor echoed in its Link header).
  const api = new Router({ strict: true, sensitive: true });
  const health = () => healthRouter((timeoutMs) => store.probe(timeoutMs), lifecycle, config.readyTimeoutMs, logger);
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
    // The probes on the public port too (for curl and `npm run up`'s checks), though Kubernetes uses the internal one.
    health(),
  ];
  // /metrics on the public port only when it has no port of its own and is not turned off.
  if (config.metrics.port === undefined && config.metrics.path !== '') routers.push(metricsRouter(metrics, config.metrics.path));
  for (const router of routers) api.use(router.routes());
  koa.use(api.routes());
  koa.use(api.allowedMethods());

  // The internal listener's app (see server.ts): the probes, and /metrics unless turned off.
  const internal = new Koa();
  internal.silent = true;
  internal.use(errorHandler(logger));
  internal.use((ctx, next) => {
    ctx.res.setHeader('X-Content-Type-Options', 'nosniff');
    return next();
  });
  internal.use(health().routes());
  if (config.metrics.path !== '') internal.use(metricsRouter(metrics, config.metrics.path).routes());
  return { koa, internal, db, metrics, lifecycle, store };
}

const SAFE_ID = /^[\w.-]{1,128}$/;

/**
 * Gives each request an id (the caller's X-Request-Id when sane) and, once the response is fully sent
 * (streamed bodies included), one log line and its metrics.
 */
function requestContext(logger: Logger, metrics: Metrics, lifecycle: Lifecycle): Middleware {
  const logRequest = requestLogger(logger);
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    // The raw Node objects, not Koa's delegating getters and setters: this runs on every request.
    const incoming = ctx.req.headers['x-request-id'];
    const id = typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID();
    // Read by the error handler, which makes a child logger only when it has something to log.
    ctx.state.requestId = id;
    ctx.res.setHeader('X-Request-Id', id);
    // No response here is meant to be content-sniffed (JSON errors rendered as HTML would be an XSS vector).
    ctx.res.setHeader('X-Content-Type-Options', 'nosniff');
    // While draining, ask keep-alive clients to reconnect elsewhere.
    if (lifecycle.draining) ctx.res.setHeader('Connection', 'close');
    ctx.res.once('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // Route templates (the router's documented ctx.routerPath), not raw paths: label cardinality stays bounded.
      const route = (ctx as { routerPath?: string }).routerPath ?? 'unmatched';
      const status = ctx.res.writableFinished ? ctx.status : 499;
      const labels = { method: ctx.method, route, status: String(status) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
      logRequest({ requestId: id, method: ctx.method, path: ctx.path, status, ms: Math.round(seconds * 1e4) / 10, completed: ctx.res.writableFinished });
    });
    await next();
  };
}
