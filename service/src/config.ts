/**
 * The service's whole configuration, read from the environment once at start.
 *
 * Every problem is collected and reported together, so a bad Deployment shows
 * all of its mistakes in one crash-loop log line rather than one per restart.
 */

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface MongoSettings {
  /** Connection string; may carry credentials, so never log it as is. */
  uri: string;
  /** Separate credentials (the Kubernetes Secret's keys) that override the URI's. */
  user?: string;
  password?: string;
  /** Database that holds the user; defaults to the app database (least privilege). */
  authSource?: string;
  database: string;
  collection: string;
  maxPoolSize: number;
  serverSelectionTimeoutMs: number;
  /** Upper bound on one database round trip (socket timeout) and server-side query time. */
  operationTimeoutMs: number;
}

export interface ServiceConfig {
  port: number;
  host: string;
  mongo: MongoSettings;
  bodyLimitBytes: number;
  /** Bytes of request bodies held at once, from the first byte read to the answer; more are shed with 503. */
  bodyBudgetBytes: number;
  logLevel: LogLevel;
  /** Origins allowed by CORS; `['*']` allows any. */
  corsOrigins: string[];
  /** Longest a readiness ping may take before /readyz says 503. */
  readyTimeoutMs: number;
  /** After SIGTERM: pause with /readyz failing before we stop accepting connections. */
  shutdownDelayMs: number;
  /** After SIGTERM: the most we wait for in-flight requests before forcing exit. */
  shutdownTimeoutMs: number;
  /** Bounds on what one request or connection may hold (see README, Environment). */
  limits: Limits;
  http: HttpTimeouts;
  /**
   * The internal listener (port set): /metrics, /healthz and /readyz, off the public Service and its connection
   * caps. Unset: all on the public port. Path '' turns /metrics off.
   */
  metrics: { port?: number; path: string };
}

export interface Limits {
  /** Database cursors this process keeps open at once (streamed GET /data); more wait their turn. */
  maxOpenCursors: number;
  /** Page reads on their way to the database at once: a share of the connection pool, so that writes never wait behind readers. */
  maxReadsInFlight: number;
  /** How long a streamed GET (or a page) waits for its turn before it gets 503. */
  cursorWaitMs: number;
  /** A streamed response whose reader takes nothing for this long is cut off (its cursor closed). */
  streamStallTimeoutMs: number;
  /** A streamed response still going after this long is cut off: a slow but steady reader holds a cursor no longer. */
  streamMaxMs: number;
  /** Documents in one bulk POST. */
  maxBulkDocuments: number;
  /** Keys and values (array elements and object members, counted at every depth) in one document. */
  maxValuesPerDocument: number;
  /** JSON bytes in one page of GET /data?limit=N (a page holds at least one document). */
  pageMaxBytes: number;
  /** Single-document inserts batched together on their way to the database at once (see InsertBatcher). */
  insertBatchesInFlight: number;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlSeconds: number;
}

export interface HttpTimeouts {
  /** The whole request (headers and body) must arrive within this time. */
  requestTimeoutMs: number;
  /** The request headers must arrive within this time. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this time. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; more are refused (closed at accept). */
  maxConnections: number;
  /** Connections one client address may hold at once; more from it are refused (closed at accept). */
  maxConnectionsPerPeer: number;
  /** While draining, an idle keep-alive connection is closed once idle this long (a request on the wire wins). */
  drainIdleMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Record<string, string | undefined>;

/** Parses `env` (normally `process.env`) into a typed config or throws ConfigError. */
export function parseConfig(env: Env): ServiceConfig {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return Number(raw);
  };

  const uri = read('MONGODB_URI') ?? 'mongodb://localhost:27017/';
  if (!/^mongodb(\+srv)?:\/\//.test(uri)) {
    problems.push('MONGODB_URI must start with mongodb:// or mongodb+srv://');
  }

  // The guide's manifests called it MONGODB_PASS while its app read MONGODB_PASSWORD: accept both.
  const password = read('MONGODB_PASSWORD') ?? read('MONGODB_PASS');
  const user = read('MONGODB_USER') ?? read('MONGODB_USERNAME');
  if ((user === undefined) !== (password === undefined)) {
    problems.push('MONGODB_USER and MONGODB_PASSWORD must be set together (or neither)');
  }

  const name = (varName: string, fallback: string): string => {
    const value = read(varName) ?? fallback;
    // MongoDB forbids these in database names; `$` and `\0` in collection names.
    if (/[/\\. "$*<>:|?\0]/.test(value) || value.length > 63) {
      problems.push(`${varName} "${value}" is not a valid MongoDB name`);
    }
    return value;
  };

  const database = name('MONGODB_DB', 'flask_db');
  const collection = name('MONGODB_COLLECTION', 'data');

  const logLevel = (read('LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const corsOrigins = (read('CORS_ORIGINS') ?? '*')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      problems.push(`CORS_ORIGINS entry "${origin}" must be * or an origin like https://example.com`);
    }
  }

  const optionalInt = (name: string): number | undefined => (read(name) === undefined ? undefined : int(name, 0, 0, 65535));
  const rawMetricsPath = env.METRICS_PATH === undefined ? '/metrics' : env.METRICS_PATH.trim();
  const metricsPath = rawMetricsPath === 'off' ? '' : rawMetricsPath;
  if (metricsPath !== '' && !/^\/[\w./-]*$/.test(metricsPath)) {
    problems.push(`METRICS_PATH must be a path like /metrics, or "off", got "${rawMetricsPath}"`);
  }

  const maxPoolSize = int('MONGODB_MAX_POOL_SIZE', 20, 1, 1000);
  const bodyLimitBytes = int('BODY_LIMIT_BYTES', 1024 * 1024, 2, 16 * 1024 * 1024);
  // A body costs this process up to six times its size while it is parsed and stored (the bytes, the text,
  // the objects, the BSON, the command), and garbage is collected late: a sixteenth of the memory limit
  // (the stack passes the pod's) keeps them well inside it, beside the heap the process needs anyway.
  const memoryLimit = int('MEMORY_LIMIT_BYTES', 0, 0, 2 ** 50);
  const config: ServiceConfig = {
    port: int('PORT', 5000, 0, 65535),
    host: read('HOST') ?? '0.0.0.0',
    mongo: {
      uri,
      user,
      password,
      authSource: read('MONGODB_AUTH_SOURCE'),
      database,
      collection,
      maxPoolSize,
      serverSelectionTimeoutMs: int('MONGODB_SERVER_SELECTION_TIMEOUT_MS', 2000, 100, 120_000),
      operationTimeoutMs: int('MONGODB_OPERATION_TIMEOUT_MS', 10_000, 100, 600_000),
    },
    bodyLimitBytes,
    bodyBudgetBytes: int('BODY_BUDGET_BYTES', Math.max(bodyLimitBytes, memoryLimit > 0 ? Math.floor(memoryLimit / 16) : 32 * 1024 * 1024), bodyLimitBytes, 2 ** 50),
    logLevel,
    corsOrigins: corsOrigins.length > 0 ? corsOrigins : ['*'],
    readyTimeoutMs: int('READY_TIMEOUT_MS', 1000, 50, 60_000),
    shutdownDelayMs: int('SHUTDOWN_DELAY_MS', 0, 0, 600_000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 20_000, 0, 600_000),
    limits: {
      // A stream's cursor holds a batch, which MongoDB caps at 16 MiB: a quarter of the memory limit for them
      // (7 in the stack's 500Mi), 16 when no limit is given.
      maxOpenCursors: int('MAX_OPEN_CURSORS', memoryLimit > 0 ? Math.max(1, Math.floor(memoryLimit / 4 / 2 ** 24)) : 16, 1, 10_000),
      // Half the pool: the other half is the writers' and the probes', whatever the readers do.
      maxReadsInFlight: int('MAX_READS_IN_FLIGHT', Math.max(1, Math.floor(maxPoolSize / 2)), 1, 10_000),
      cursorWaitMs: int('CURSOR_WAIT_MS', 5000, 0, 600_000),
      streamStallTimeoutMs: int('STREAM_STALL_TIMEOUT_MS', 30_000, 100, 3_600_000),
      streamMaxMs: int('STREAM_MAX_MS', 900_000, 1000, 86_400_000),
      maxBulkDocuments: int('MAX_BULK_DOCUMENTS', 1000, 1, 100_000),
      maxValuesPerDocument: int('MAX_VALUES_PER_DOCUMENT', 10_000, 1, 10_000_000),
      pageMaxBytes: int('PAGE_MAX_BYTES', 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
      idempotencyTtlSeconds: int('IDEMPOTENCY_TTL_SECONDS', 86_400, 1, 30 * 86_400),
      insertBatchesInFlight: int('INSERT_BATCHES_IN_FLIGHT', 4, 1, 1000),
    },
    http: {
      requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 30_000, 1000, 3_600_000),
      headersTimeoutMs: int('HEADERS_TIMEOUT_MS', 10_000, 1000, 3_600_000),
      keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', 65_000, 1000, 3_600_000),
      maxConnections: int('MAX_CONNECTIONS', 1024, 1, 1_000_000),
      // Half the default cap: no one address can take every slot, and the guide's `wrk -c400` from one
      // machine still fits. (Behind a NodePort with SNAT every client has the node's address: raise it there.)
      maxConnectionsPerPeer: int('MAX_CONNECTIONS_PER_PEER', 512, 1, 1_000_000),
      drainIdleMs: int('DRAIN_IDLE_MS', 1000, 0, 600_000),
    },
    metrics: { port: optionalInt('METRICS_PORT'), path: metricsPath },
  };
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
    problems.push('HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS');
  }
  if (config.metrics.port !== undefined && config.metrics.port === config.port && config.port !== 0) {
    problems.push('METRICS_PORT must differ from PORT (leave it unset to serve /metrics on PORT)');
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The URI with any user:password removed, safe for logs. */
export function redactUri(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1***@');
}
