import Router from '@koa/router';

/** GET / as the guide's Flask app answered it, so its curl checks still pass. */
export function rootRouter(now: () => Date = () => new Date()): Router {
  const router = new Router({ strict: true, sensitive: true });
  router.get('/', (ctx) => {
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = `Welcome to the Flask app! The current time is: ${now().toISOString()}`;
  });
  return router;
}
