import Router from '@koa/router';
import type { Metrics } from '../metrics';

/** Prometheus text exposition of this process's metrics. */
export function metricsRouter(metrics: Metrics, path = '/metrics'): Router {
  const router = new Router({ strict: true, sensitive: true });
  router.get(path, async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
