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
  logLevel: LogLevel;
  /** Origins allowed by CORS; `['*']` allows any. */
  corsOrigins: string[];
  /** Longest a readiness ping may take before /readyz says 503. */
  readyTimeoutMs: number;
  /** After SIGTERM: pause with /readyz failing before we stop accepting connections. */
  shutdownDelayMs: number;
  /** After SIGTERM: the most we wait for in-flight requests before forcing exit. */
  shutdownTimeoutMs: number;
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
      maxPoolSize: int('MONGODB_MAX_POOL_SIZE', 20, 1, 1000),
      serverSelectionTimeoutMs: int('MONGODB_SERVER_SELECTION_TIMEOUT_MS', 2000, 100, 120_000),
      operationTimeoutMs: int('MONGODB_OPERATION_TIMEOUT_MS', 10_000, 100, 600_000),
    },
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 1024 * 1024, 2, 16 * 1024 * 1024),
    logLevel,
    corsOrigins: corsOrigins.length > 0 ? corsOrigins : ['*'],
    readyTimeoutMs: int('READY_TIMEOUT_MS', 1000, 50, 60_000),
    shutdownDelayMs: int('SHUTDOWN_DELAY_MS', 0, 0, 600_000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 20_000, 0, 600_000),
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The URI with any user:password removed, safe for logs. */
export function redactUri(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1***@');
}
