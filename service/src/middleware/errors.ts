import type { Middleware } from 'koa';
import { HttpError, toHttpError } from '../errors';
import type { Logger } from '../logger';

/**
 * The one place failures become responses: every error, whoever threw it,
 * leaves as `{"error": "..."}` with its status. Details of 5xx errors go to the
 * log (with the request id), never to the client.
 */
export function errorHandler(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      // Statuses set without a body (no route, wrong method) get their JSON error here.
      if (ctx.status >= 400 && ctx.body == null) {
        throw new HttpError(ctx.status, bodylessMessage(ctx.status, ctx.method, ctx.path, ctx.response.get('Allow')));
      }
    } catch (error) {
      const http = toHttpError(error);
      const requestId = ctx.state.requestId as string | undefined;
      const log = requestId === undefined ? logger : logger.child({ requestId });
      // Our failures are logged with their cause; a method we do not implement (501) is the client's
      // doing and already has its request line.
      if (http.expected) {
        log.warn({ status: http.status, reason: http.message }, 'request not served');
      } else if (http.status >= 500 && http.status !== 501) {
        log.error({ err: error }, 'request failed');
      }
      // Headers set by inner middleware (e.g. CORS) ride on the error; keep them.
      const carried = (error as { headers?: Record<string, string> }).headers ?? {};
      ctx.set({ ...carried, ...http.headers });
      ctx.status = http.status;
      ctx.body = { error: http.message };
    }
  };
}

function bodylessMessage(status: number, method: string, path: string, allow: string): string {
  switch (status) {
    case 404:
      return `no route for ${method} ${path}`;
    case 405:
      return `method ${method} is not allowed on ${path}; allowed: ${allow}`;
    case 501:
      return `method ${method} is not implemented`;
    default:
      return `request failed with status ${status}`;
  }
}
