import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { App } from './app';
import type { ServiceConfig } from './config';
import { answerOutsideTheApp } from './errors';
import type { Logger } from './logger';

export type RunningServer = Awaited<ReturnType<typeof startServer>>;

/**
 * Listens with the bounds on what clients may hold (timeouts, connections, per peer), and knows how to stop
 * without dropping work: readiness fails first, then (after an optional delay for endpoint removal to
 * propagate) no new connections are accepted, in-flight requests finish, idle keep-alive connections are
 * closed once they have been idle a moment, and the database client is closed last.
 */
export async function startServer(app: App, logger: Logger, options: Pick<ServiceConfig, 'port' | 'host' | 'shutdownDelayMs' | 'shutdownTimeoutMs' | 'bodyLimitBytes' | 'metrics' | 'http'>) {
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
  const connections = trackConnections(server, limits.maxConnectionsPerPeer);
  answerOutsideTheApp(server, logger, options.bodyLimitBytes, connections.answering);
  await listen(server, options.port, options.host);
  const address = server.address() as AddressInfo;

  // The probes and /metrics on a listener of their own: the public caps cannot starve them.
  const metricsServer = options.metrics.port === undefined ? undefined : http.createServer({ keepAliveTimeout: 5000 }, app.internal.callback());
  if (metricsServer) await listen(metricsServer, options.metrics.port!, options.host);
  const metricsAddress = metricsServer?.address() as AddressInfo | undefined; // when METRICS_PORT is set

  let stopping: Promise<number> | undefined;
  const stop = async (reason: string): Promise<number> => {
    app.lifecycle.draining = true;
    logger.info({ reason, delayMs: options.shutdownDelayMs }, 'shutting down: readiness now fails');
    if (options.shutdownDelayMs > 0) await sleep(options.shutdownDelayMs);
    // net.Server's close, not http.Server's: the latter also closes every idle keep-alive connection at
    // once, racing a request the client has already put on the wire (it would see a reset). Instead,
    // requests that come in on a kept-alive connection are answered with `Connection: close`, and a
    // connection is closed only once it has been idle for DRAIN_IDLE_MS.
    const closed = new Promise<boolean>((resolve) => net.Server.prototype.close.call(server, () => resolve(false)));
    const reaper = setInterval(() => connections.closeIdle(limits.drainIdleMs), 50);
    const expired = await Promise.race([closed, sleep(options.shutdownTimeoutMs, true, { ref: false })]);
    clearInterval(reaper);
    if (expired) {
      logger.error({ timeoutMs: options.shutdownTimeoutMs }, 'in-flight requests did not finish in time; closing them');
      server.closeAllConnections();
    }
    metricsServer?.closeAllConnections();
    metricsServer?.close();
    await app.db.close().catch((error: Error) => logger.warn({ reason: error.name }, 'closing the database client failed'));
    logger.info('stopped');
    return expired ? 1 : 0;
  };

  logger.info({ port: address.port, host: address.address, metricsPort: metricsAddress?.port }, 'listening');
  /** Drains and stops (once, whoever asks); resolves with the exit code the process should use. */
  const shutdown = (reason: string): Promise<number> => (stopping ??= stop(reason));
  return { server, address, metricsAddress, shutdown };
}

/**
 * Refuses (closes at accept) a connection from an address that already holds `maxPerPeer`, and tracks each
 * connection's requests for draining: Node's closeIdleConnections() closes a connection the moment no
 * response is pending, even when the client's next request is already on the wire.
 */
function trackConnections(server: http.Server, maxPerPeer: number) {
  const perPeer = new Map<string, number>();
  /** Per connection: requests whose response has not closed, since when it is idle, the response being written. */
  const states = new Map<net.Socket, { active: number; idleSince: number; response?: http.ServerResponse }>();
  // Before Node's own listener, so that a refused connection never reaches the HTTP parser.
  server.prependListener('connection', (socket: net.Socket) => {
    const peer = socket.remoteAddress ?? '';
    const count = perPeer.get(peer) ?? 0;
    if (count >= maxPerPeer) return void socket.destroy();
    perPeer.set(peer, count + 1);
    states.set(socket, { active: 0, idleSince: Date.now() });
    socket.once('close', () => {
      states.delete(socket);
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left > 0) perPeer.set(peer, left);
      else perPeer.delete(peer);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const state = states.get(req.socket);
    if (!state) return;
    state.active++;
    state.response = res;
    res.once('finish', () => state.response === res && (state.response = undefined));
    res.once('close', () => {
      state.active--;
      state.idleSince = Date.now();
    });
  });
  return {
    /** True while a response on this connection has begun and not finished (no other answer may be written into it). */
    answering: (socket: net.Socket) => states.get(socket)?.response?.headersSent === true,
    /** Closes connections with no request in progress that have been idle at least `idleMs`. */
    closeIdle(idleMs: number) {
      const now = Date.now();
      for (const [socket, state] of states) {
        if (state.active === 0 && now - state.idleSince >= idleMs) socket.destroy();
      }
    },
  };
}

/** Resolves once listening; rejects on the error (a port in use) instead. */
async function listen(server: net.Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}
