import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { App } from './app';
import type { HttpTimeouts, ServiceConfig } from './config';
import type { Database } from './db';
import type { Logger } from './logger';
import { answerClientError, answerConnect, refuseExpectation, refuseOversizeUpload } from './nodeErrors';
import { trackConnections } from './connections';

export interface ServerOptions extends Pick<ServiceConfig, 'port' | 'host' | 'shutdownDelayMs' | 'shutdownTimeoutMs' | 'bodyLimitBytes' | 'metrics'> {
  http: HttpTimeouts;
}

export interface RunningServer {
  server: http.Server;
  address: AddressInfo;
  /** The internal listener (probes and /metrics), when METRICS_PORT is set. */
  metricsAddress?: AddressInfo;
  /** Drains and stops; resolves with the exit code the process should use. */
  shutdown(reason: string): Promise<number>;
}

/**
 * Listens, and knows how to stop without dropping work: readiness fails first,
 * then (after an optional delay for endpoint removal to propagate) no new
 * connections are accepted, in-flight requests finish, idle keep-alive
 * connections are closed once they have been idle a moment, and the database
 * client is closed last.
 */
export async function startServer(app: App, db: Pick<Database, 'close'>, logger: Logger, options: ServerOptions): Promise<RunningServer> {
  const limits = options.http;
  const server = http.createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often Node checks the two timeouts above (its default, 30 s, would let them run late by that much).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    app.koa.callback(),
  );
  server.maxConnections = limits.maxConnections;
  limitPerPeer(server, limits.maxConnectionsPerPeer);
  const connections = trackConnections(server);
  // Malformed requests, oversized headers and timeouts, answered by Node's parser: JSON like every other answer.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => answerClientError(error, socket, logger, connections.answering(socket)));
  // `Expect: 100-continue` with a body over the limit is refused before the client sends it.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (refuseOversizeUpload(req, res, options.bodyLimitBytes)) return;
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('checkExpectation', refuseExpectation);
  server.on('connect', answerConnect);

  await listen(server, options.port, options.host);
  const address = server.address() as AddressInfo;

  // The probes and /metrics on a listener of their own: the public caps cannot starve them.
  let metricsServer: http.Server | undefined;
  if (options.metrics.port !== undefined) {
    metricsServer = http.createServer({ keepAliveTimeout: 5000 }, app.internal.callback());
    await listen(metricsServer, options.metrics.port, options.host);
  }

  let stopping: Promise<number> | undefined;
  const shutdown = (reason: string): Promise<number> => {
    stopping ??= (async () => {
      app.lifecycle.draining = true;
      logger.info({ reason, delayMs: options.shutdownDelayMs }, 'shutting down: readiness now fails');
      if (options.shutdownDelayMs > 0) await sleep(options.shutdownDelayMs);

      // net.Server's close, not http.Server's: the latter also closes every idle keep-alive connection at
      // once, racing a request the client has already put on the wire (it would see a reset). Instead,
      // requests that come in on a kept-alive connection are answered with `Connection: close`, and a
      // connection is closed only once it has been idle for DRAIN_IDLE_MS.
      const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
      const reaper = setInterval(() => connections.closeIdle(limits.drainIdleMs), 50);
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
      metricsServer?.closeAllConnections();
      metricsServer?.close();
      await db.close().catch((error: Error) => logger.warn({ reason: error.name }, 'closing the database client failed'));
      logger.info('stopped');
      return expired ? 1 : 0;
    })();
    return stopping;
  };

  logger.info({ port: address.port, host: address.address, metricsPort: (metricsServer?.address() as AddressInfo | undefined)?.port }, 'listening');
  return { server, address, metricsAddress: metricsServer?.address() as AddressInfo | undefined, shutdown };
}

/** Refuses (closes at accept) a connection from an address that already holds `max`. */
function limitPerPeer(server: net.Server, max: number): void {
  const held = new Map<string, number>();
  // Before Node's own listener, so that a refused connection never reaches the HTTP parser.
  server.prependListener('connection', (socket: net.Socket) => {
    const peer = socket.remoteAddress ?? '';
    const count = held.get(peer) ?? 0;
    if (count >= max) {
      socket.destroy();
      return;
    }
    held.set(peer, count + 1);
    socket.once('close', () => {
      const left = (held.get(peer) ?? 1) - 1;
      if (left === 0) held.delete(peer);
      else held.set(peer, left);
    });
  });
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
