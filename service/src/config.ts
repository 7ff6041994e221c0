/**
 * The service's whole configuration, read from the environment once at start; its types are the parser's
 * result. Every problem is reported at once: a bad Deployment shows all its mistakes in one log line.
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type ServiceConfig = ReturnType<typeof parseConfig>;
export type MongoSettings = ServiceConfig['mongo'];
export type Limits = ServiceConfig['limits'];
export type HttpTimeouts = ServiceConfig['http'];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses `env` (normally `process.env`) into a typed config or throws ConfigError. */
export function parseConfig(env: Record<string, string | undefined>) {
  const problems: string[] = [];
  const read = (name: string): string | undefined => env[name]?.trim() || undefined;
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (/^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max) return Number(raw);
    problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return fallback;
  };
  const name = (variable: string, fallback: string): string => {
    const value = read(variable) ?? fallback;
    // MongoDB forbids these in database names; `$` and `\0` in collection names.
    if (/[/\\. "$*<>:|?\0]/.test(value) || value.length > 63) problems.push(`${variable} "${value}" is not a valid MongoDB name`);
    return value;
  };

  const uri = read('MONGODB_URI') ?? 'mongodb://localhost:27017/';
  if (!/^mongodb(\+srv)?:\/\//.test(uri)) problems.push('MONGODB_URI must start with mongodb:// or mongodb+srv://');
  // The guide's manifests called it MONGODB_PASS while its app read MONGODB_PASSWORD: accept both.
  const password = read('MONGODB_PASSWORD') ?? read('MONGODB_PASS');
  const user = read('MONGODB_USER') ?? read('MONGODB_USERNAME');
  if ((user === undefined) !== (password === undefined)) problems.push('MONGODB_USER and MONGODB_PASSWORD must be set together (or neither)');
  const database = name('MONGODB_DB', 'flask_db');
  const collection = name('MONGODB_COLLECTION', 'data');
  const logLevel = (read('LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const corsOrigins = (read('CORS_ORIGINS') ?? '*').split(',').map((origin) => origin.trim()).filter(Boolean);
  for (const origin of corsOrigins.filter((origin) => origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin))) {
    problems.push(`CORS_ORIGINS entry "${origin}" must be * or an origin like https://example.com`);
  }
  const rawMetricsPath = env.METRICS_PATH?.trim() ?? '/metrics';
  const metricsPath = rawMetricsPath === 'off' ? '' : rawMetricsPath;
  if (metricsPath !== '' && !/^\/[\w./-]*$/.test(metricsPath)) problems.push(`METRICS_PATH must be a path like /metrics, or "off", got "${rawMetricsPath}"`);

  const maxPoolSize = int('MONGODB_MAX_POOL_SIZE', 20, 1, 1000);
  const bodyLimitBytes = int('BODY_LIMIT_BYTES', 1024 * 1024, 2, 16 * 1024 * 1024);
  // A body costs this process up to six times its size while it is parsed and stored (the bytes, the text,
  // the objects, the BSON, the command), and garbage is collected late: a sixteenth of the memory limit
  // (the stack passes the pod's) keeps them well inside it, beside the heap the process needs anyway.
  const memoryLimit = int('MEMORY_LIMIT_BYTES', 0, 0, 2 ** 50);
  const port = int('PORT', 5000, 0, 65535);
  const config = {
    port,
    host: read('HOST') ?? '0.0.0.0',
    mongo: {
      /** Connection string; may carry credentials, so never log it as is. */
      uri,
      /** Separate credentials (the Kubernetes Secret's keys) that override the URI's. */
      user,
      password,
      /** Database that holds the user; defaults to the app database (least privilege). */
      authSource: read('MONGODB_AUTH_SOURCE'),
      database,
      collection,
      maxPoolSize,
      serverSelectionTimeoutMs: int('MONGODB_SERVER_SELECTION_TIMEOUT_MS', 2000, 100, 120_000),
      /** Upper bound on one database round trip (socket timeout) and server-side query time. */
      operationTimeoutMs: int('MONGODB_OPERATION_TIMEOUT_MS', 10_000, 100, 600_000),
    },
    bodyLimitBytes,
    /** Bytes of request bodies held at once, from the first byte read to the answer; more are shed with 503. */
    bodyBudgetBytes: int('BODY_BUDGET_BYTES', Math.max(bodyLimitBytes, memoryLimit > 0 ? Math.floor(memoryLimit / 16) : 32 * 1024 * 1024), bodyLimitBytes, 2 ** 50),
    logLevel,
    /** Origins allowed by CORS; `['*']` allows any. */
    corsOrigins: corsOrigins.length > 0 ? corsOrigins : ['*'],
    /** Longest a readiness ping may take before /readyz says 503. */
    readyTimeoutMs: int('READY_TIMEOUT_MS', 1000, 50, 60_000),
    /** After SIGTERM: the pause with /readyz failing before no new connection is accepted. */
    shutdownDelayMs: int('SHUTDOWN_DELAY_MS', 0, 0, 600_000),
    /** After SIGTERM: the most we wait for in-flight requests before forcing exit. */
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 20_000, 0, 600_000),
    /** Bounds on what one request or connection may hold (docs/service.md). */
    limits: {
      // A stream's cursor holds a batch, which MongoDB caps at 16 MiB: a quarter of the memory limit for them
      // (7 in the stack's 500Mi), 16 when no limit is given.
      maxOpenCursors: int('MAX_OPEN_CURSORS', memoryLimit > 0 ? Math.max(1, Math.floor(memoryLimit / 4 / 2 ** 24)) : 16, 1, 10_000),
      // Half the pool: the other half is the writers' and the probes', whatever the readers do.
      maxReadsInFlight: int('MAX_READS_IN_FLIGHT', Math.max(1, Math.floor(maxPoolSize / 2)), 1, 10_000),
      /** How long a streamed GET (or a page) waits for its turn before it gets 503. */
      cursorWaitMs: int('CURSOR_WAIT_MS', 5000, 0, 600_000),
      /** A streamed response whose reader takes nothing for this long is cut off (its cursor closed). */
      streamStallTimeoutMs: int('STREAM_STALL_TIMEOUT_MS', 30_000, 100, 3_600_000),
      /** A streamed response still going after this long is cut off: a slow but steady reader holds a cursor no longer. */
      streamMaxMs: int('STREAM_MAX_MS', 900_000, 1000, 86_400_000),
      maxBulkDocuments: int('MAX_BULK_DOCUMENTS', 1000, 1, 100_000),
      /** Keys and values (array elements and object members, counted at every depth) in one document. */
      maxValuesPerDocument: int('MAX_VALUES_PER_DOCUMENT', 10_000, 1, 10_000_000),
      /** JSON bytes in one page of GET /data?limit=N (a page holds at least one document). */
      pageMaxBytes: int('PAGE_MAX_BYTES', 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
      idempotencyTtlSeconds: int('IDEMPOTENCY_TTL_SECONDS', 86_400, 1, 30 * 86_400),
      /** Single-document inserts batched together on their way to the database at once (see InsertBatcher). */
      insertBatchesInFlight: int('INSERT_BATCHES_IN_FLIGHT', 4, 1, 1000),
    },
    http: {
      /** The whole request (headers and body) must arrive within this time. */
      requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 30_000, 1000, 3_600_000),
      headersTimeoutMs: int('HEADERS_TIMEOUT_MS', 10_000, 1000, 3_600_000),
      keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', 65_000, 1000, 3_600_000),
      /** Connections open at once; more are refused (closed at accept). */
      maxConnections: int('MAX_CONNECTIONS', 1024, 1, 1_000_000),
      // Half the default cap: no one address can take every slot, and the guide's `wrk -c400` from one
      // machine still fits. (Behind a NodePort with SNAT every client has the node's address: raise it there.)
      maxConnectionsPerPeer: int('MAX_CONNECTIONS_PER_PEER', 512, 1, 1_000_000),
      /** While draining, an idle keep-alive connection is closed once idle this long (a request on the wire wins). */
      drainIdleMs: int('DRAIN_IDLE_MS', 1000, 0, 600_000),
    },
    /**
     * The internal listener (port set): /metrics, /healthz and /readyz, off the public Service and its connection
     * caps. Unset: all on the public port. Path '' turns /metrics off.
     */
    metrics: { port: read('METRICS_PORT') === undefined ? undefined : int('METRICS_PORT', 0, 0, 65535), path: metricsPath },
  };
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) problems.push('HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS');
  if (config.metrics.port === port && port !== 0) problems.push('METRICS_PORT must differ from PORT (leave it unset to serve /metrics on PORT)');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The URI with any user:password removed, safe for logs. */
export function redactUri(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1***@');
}
