/** The process: read env once, build the app (app.ts), listen (server.ts), and stop cleanly on SIGTERM/SIGINT. */
import { ConfigError, parseConfig, redactUri, type ServiceConfig } from './config';
import { createApp } from './app';
import { createLogger, flushLogsSync } from './logger';
import { startServer } from './server';

async function main(): Promise<void> {
  let config: ServiceConfig;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: error.message, problems: error.problems })}\n`);
    process.exit(78); // EX_CONFIG
  }
  const logger = createLogger(config.logLevel);
  const fail = (msg: string) => (err: unknown): never => {
    logger.fatal({ err }, msg);
    flushLogsSync();
    process.exit(1);
  };
  process.on('unhandledRejection', fail('unhandled rejection'));

  const app = createApp({ config, logger });
  const { uri, database, collection, user } = config.mongo;
  logger.info({ mongo: redactUri(uri), database, collection, authenticated: user !== undefined }, 'starting');
  const running = await startServer(app, logger, config).catch(fail('could not listen'));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void running.shutdown(signal).then((code) => {
        flushLogsSync();
        process.exit(code);
      });
    });
  }
}

void main();
