import { MongoClient, type Collection, type Document, type MongoClientOptions } from 'mongodb';
import { redactUri, type MongoSettings } from './config';
import type { Logger } from './logger';

/** What the HTTP layer needs from the database, and nothing more. */
export interface Database {
  collection: Collection<Document>;
  /** Resolves when the server answers a ping within `timeoutMs`, else rejects. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export function clientOptions(settings: MongoSettings): MongoClientOptions {
  const options: MongoClientOptions = {
    appName: 'data-service',
    maxPoolSize: settings.maxPoolSize,
    // Fail fast when the server is away, so requests get a 503 in seconds, not a hang.
    serverSelectionTimeoutMS: settings.serverSelectionTimeoutMs,
    connectTimeoutMS: Math.max(settings.serverSelectionTimeoutMs, 1000),
    // The bound on any one round trip: a server that accepts but never answers
    // turns into a network timeout (503) instead of a request that hangs.
    // (The driver's `timeoutMS` is a no-op in mongodb 7, so it is not used.)
    socketTimeoutMS: settings.operationTimeoutMs,
    monitorCommands: true,
  };
  if (settings.user !== undefined && settings.password !== undefined) {
    // Credentials travel as options, never spliced into the URI, so no log line
    // or error message built from the URI can ever contain the password.
    options.auth = { username: settings.user, password: settings.password };
    options.authSource = settings.authSource ?? settings.database;
  } else if (settings.authSource !== undefined) {
    options.authSource = settings.authSource;
  }
  return options;
}

/**
 * Creates the process's one MongoClient. It does not wait for the server: the
 * service must start (and answer /healthz) while the database is still down,
 * and the driver connects, and reconnects, on its own.
 */
export function createDatabase(settings: MongoSettings, logger: Logger): Database & { client: MongoClient } {
  const client = new MongoClient(settings.uri, clientOptions(settings));
  const db = client.db(settings.database);
  const log = logger.child({ component: 'mongodb', target: redactUri(settings.uri) });

  let reachable: boolean | undefined;
  const report = (now: boolean, reason?: string) => {
    if (reachable === now) return;
    reachable = now;
    if (now) log.info('database reachable');
    else log.warn({ reason }, 'database unreachable');
  };
  client.on('serverHeartbeatSucceeded', () => report(true));
  client.on('serverHeartbeatFailed', (event) => report(false, event.failure?.name));

  client.connect().catch((error: Error) => {
    log.warn({ reason: error.name }, 'initial connection failed; will retry on demand');
  });

  return {
    client,
    collection: db.collection(settings.collection),
    async ping(timeoutMs) {
      await db.command({ ping: 1 }, { signal: AbortSignal.timeout(timeoutMs) });
    },
    async close() {
      await client.close();
    },
  };
}
