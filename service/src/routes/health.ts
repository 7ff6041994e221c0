import Router from '@koa/router';
import type { Logger } from '../logger';

/** Set on SIGTERM: readiness fails at once so Kubernetes stops routing to us. */
export type Lifecycle = { draining: boolean };

/**
 * /healthz: the process is alive (it never touches the database, so a database outage does not make
 * Kubernetes restart healthy pods). /readyz: send traffic here (this process can read its collection in
 * time, and is not shutting down).
 */
export function healthRouter(probe: (timeoutMs: number) => Promise<void>, lifecycle: Lifecycle, readyTimeoutMs: number, logger: Logger): Router {
  const router = new Router({ strict: true, sensitive: true });
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if (lifecycle.draining) {
      ctx.status = 503;
      ctx.body = { error: 'shutting down' };
      return;
    }
    try {
      await probe(readyTimeoutMs);
      ctx.body = { status: 'ready' };
    } catch (error) {
      logger.debug({ reason: (error as Error).name }, 'readiness probe failed');
      ctx.status = 503;
      ctx.body = { error: 'database unavailable' };
    }
  });
  return router;
}
