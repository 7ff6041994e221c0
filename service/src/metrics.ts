import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

/** Prometheus metrics of one app instance, in a registry of its own (not prom-client's global one) so that tests can build many apps in one process. */
export function createMetrics() {
  const registry = new Registry();
  // The event-loop delay monitor samples every 10 ms by default: about 4 ms of CPU a second on an idle
  // process, which at a few requests a second is a large share of the CPU per request. 100 ms is plenty.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  const labelNames = ['method', 'route', 'status'] as const;
  return {
    registry,
    httpRequests: new Counter({ name: 'http_requests_total', help: 'HTTP requests served, by route template and status', labelNames, registers }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency until the response is finished (streamed bodies included)',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    dbDuration: new Histogram({
      name: 'db_operation_duration_seconds',
      help: 'MongoDB operation latency as seen by the service (for streams: until the first batch), by operation and outcome',
      labelNames: ['operation', 'outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    /** Set by the store when scraped. */
    openCursors: new Gauge({ name: 'db_open_cursors', help: 'Database cursors this process holds open (streamed reads in progress)', registers }),
  };
}

/**
 * Runs one database operation and records its latency and outcome. Timed here rather than through the
 * driver's command monitoring, which would make the driver build an event (and parse every reply) for
 * each command.
 */
export async function timed<T>(metrics: Metrics, operation: string, work: () => Promise<T>): Promise<T> {
  const stop = metrics.dbDuration.startTimer({ operation });
  try {
    const result = await work();
    stop({ outcome: 'ok' });
    return result;
  } catch (error) {
    stop({ outcome: 'error' });
    throw error;
  }
}
