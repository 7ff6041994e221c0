import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { requestLogger, type Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Lifecycle } from '../routes/health';

const SAFE_ID = /^[\w.-]{1,128}$/;

/**
 * Gives each request an id (the caller's X-Request-Id when sane), a child logger,
 * and, once the response is fully sent (streamed bodies included), one log line
 * and its metrics.
 */
export function requestContext(logger: Logger, metrics: Metrics, lifecycle: Lifecycle): Middleware {
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
      // Route templates, not raw paths, keep label cardinality bounded.
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const status = ctx.res.writableFinished ? ctx.status : 499;
      const labels = { method: ctx.method, route: String(route), status: String(status) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
      logRequest({ requestId: id, method: ctx.method, path: ctx.path, status, ms: Math.round(seconds * 1e4) / 10, completed: ctx.res.writableFinished });
    });
    await next();
  };
}
