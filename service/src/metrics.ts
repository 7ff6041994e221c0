import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MongoClient } from 'mongodb';

/**
 * Prometheus metrics of one app instance. A registry of its own (not prom-client's
 * global one) so that tests can build many apps in one process.
 */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  dbDuration: Histogram<'operation' | 'outcome'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests served, by route template and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency until the response is finished (streamed bodies included)',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    dbDuration: new Histogram({
      name: 'db_operation_duration_seconds',
      help: 'MongoDB command latency as seen by the driver, by command and outcome',
      labelNames: ['operation', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

/**
 * Times every command the driver sends, from its own command-monitoring events
 * (the client must be created with `monitorCommands: true`). This covers
 * inserts, finds and each getMore of a streamed cursor without wrapping calls.
 */
export function observeDatabase(client: MongoClient, metrics: Metrics): void {
  const record = (outcome: string) => (event: { commandName: string; duration: number }) => {
    metrics.dbDuration.observe({ operation: event.commandName, outcome }, event.duration / 1000);
  };
  client.on('commandSucceeded', record('ok'));
  client.on('commandFailed', record('error'));
}
