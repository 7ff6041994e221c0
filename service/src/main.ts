/**
 * The process: read env once, build the app, listen, and stop cleanly on
 * SIGTERM/SIGINT. Everything testable lives in createApp and startServer.
 */
import { ConfigError, parseConfig, redactUri } from './config';
import { createLogger, flushLogsSync } from './logger';
import { startServer } from './server';
import { createService } from './service';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: error.message, problems: error.problems })}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const logger = createLogger(config.logLevel);
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    flushLogsSync();
    process.exit(1);
  });

  const { app, db } = createService(config, logger);

  logger.info(
    {
      mongo: redactUri(config.mongo.uri),
      database: config.mongo.database,
      collection: config.mongo.collection,
      authenticated: config.mongo.user !== undefined,
    },
    'starting',
  );
  const running = await startServer(app, db, logger, config).catch((error: Error) => {
    logger.fatal({ err: error }, 'could not listen');
    flushLogsSync();
    process.exit(1);
  });

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
