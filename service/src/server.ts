import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from './app';
import type { Database } from './db';
import type { Logger } from './logger';

export interface ServerOptions {
  port: number;
  host: string;
  shutdownDelayMs: number;
  shutdownTimeoutMs: number;
}

export interface RunningServer {
  server: http.Server;
  address: AddressInfo;
  /** Drains and stops; resolves with the exit code the process should use. */
  shutdown(reason: string): Promise<number>;
}

/**
 * Listens, and knows how to stop without dropping work: readiness fails first,
 * then (after an optional delay for endpoint removal to propagate) no new
 * connections are accepted, in-flight requests finish, idle keep-alive
 * connections are closed, and the database client is closed last.
 */
export async function startServer(app: App, db: Pick<Database, 'close'>, logger: Logger, options: ServerOptions): Promise<RunningServer> {
  const server = http.createServer(app.koa.callback());
  // Slightly above common load-balancer idle timeouts, so the LB closes first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  let stopping: Promise<number> | undefined;
  const shutdown = (reason: string): Promise<number> => {
    stopping ??= (async () => {
      app.lifecycle.draining = true;
      logger.info({ reason, delayMs: options.shutdownDelayMs }, 'shutting down: readiness now fails');
      if (options.shutdownDelayMs > 0) await sleep(options.shutdownDelayMs);

      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Connections that go idle after their last in-flight response are closed too.
      const reaper = setInterval(() => server.closeIdleConnections(), 100);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), options.shutdownTimeoutMs);
      });
      const expired = await Promise.race([closed.then(() => false), timedOut]);
      clearInterval(reaper);
      clearTimeout(timer);
      if (expired) {
        logger.error({ timeoutMs: options.shutdownTimeoutMs }, 'in-flight requests did not finish in time; closing them');
        server.closeAllConnections();
      }
      await db.close().catch((error: Error) => logger.warn({ reason: error.name }, 'closing the database client failed'));
      logger.info('stopped');
      return expired ? 1 : 0;
    })();
    return stopping;
  };

  logger.info({ port: address.port, host: address.address }, 'listening');
  return { server, address, shutdown };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
