import { MongoClient, type Collection, type Document, type MongoClientOptions } from 'mongodb';
import { redactUri, type MongoSettings } from './config';
import type { Logger } from './logger';

/** What the HTTP layer needs from the database, and nothing more. */
export interface Database {
  /** The app's collection on the current client (see createDatabase for why it can change). */
  collection(): Collection<Document>;
  close(): Promise<void>;
}

export function clientOptions(settings: MongoSettings): MongoClientOptions {
  const options: MongoClientOptions = {
    appName: 'data-service',
    maxPoolSize: settings.maxPoolSize,
    // Fail fast when the server is away, so requests get a 503 in seconds, not a hang.
    serverSelectionTimeoutMS: settings.serverSelectionTimeoutMs,
    connectTimeoutMS: Math.max(settings.serverSelectionTimeoutMs, 1000),
    // The bound on any one round trip, half a second past the queries' own time limit (maxTimeMS): a server
    // that never answers is a network timeout, a slow query is ended by the server, which says so (504), and
    // the connection stays usable. (The driver's `timeoutMS` is a no-op in mongodb 7.)
    socketTimeoutMS: settings.operationTimeoutMs + 500,
  };
  // Credentials travel as options, never spliced into the URI: no log line or error message built from the URI can hold the password.
  if (settings.user !== undefined && settings.password !== undefined) options.auth = { username: settings.user, password: settings.password };
  if (options.auth || settings.authSource !== undefined) options.authSource = settings.authSource ?? settings.database;
  return options;
}

/**
 * One MongoClient per process, created without waiting for the server: the service must start (and answer
 * /healthz) while the database is still down. The driver connects on the first operation and reconnects by
 * itself after a server drops mid-run. One case it does not heal (mongodb 7.9): when that first connection
 * fails, the client keeps a closed topology and every later operation fails with "Topology is closed",
 * forever, and a closed MongoClient cannot be reopened. So when the topology closes without our asking,
 * this swaps in a fresh client, and the next request connects afresh.
 */
export function createDatabase(settings: MongoSettings, logger: Logger): Database {
  const log = logger.child({ component: 'mongodb', target: redactUri(settings.uri) });
  let closing = false;
  let reachable: boolean | undefined;
  const report = (now: boolean, reason?: string) => {
    if (reachable === now) return;
    reachable = now;
    if (now) log.info('database reachable');
    else log.warn({ reason }, 'database unreachable');
  };

  const open = (): { client: MongoClient; collection: Collection<Document> } => {
    const client = new MongoClient(settings.uri, clientOptions(settings));
    client.on('serverHeartbeatSucceeded', () => report(true));
    client.on('serverHeartbeatFailed', (event) => report(false, event.failure?.name));
    client.on('topologyClosed', () => {
      if (closing || current.client !== client) return;
      log.warn('connection attempt failed and closed the client; replacing it');
      current = open();
      void client.close().catch(() => undefined);
    });
    return { client, collection: client.db(settings.database).collection(settings.collection) };
  };
  let current = open();

  return {
    collection: () => current.collection,
    async close() {
      closing = true;
      await current.client.close();
    },
  };
}
