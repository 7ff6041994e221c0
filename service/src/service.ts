import { createApp, type App } from './app';
import type { ServiceConfig } from './config';
import { createDatabase, type Database } from './db';
import type { Logger } from './logger';
import { createMetrics } from './metrics';

/** The app wired to the process's MongoClient, with database metrics: what main.ts serves. */
export function createService(config: ServiceConfig, logger: Logger): { app: App; db: Database } {
  const metrics = createMetrics();
  const db = createDatabase(config.mongo, logger);
  return { app: createApp({ db, logger, config, metrics }), db };
}
