/**
 * Mocha global fixtures for test/service: one database for the whole run,
 * found or started by devkit/database.ts, and stopped afterwards.
 */
import { startTestDatabase, type TestDatabase } from '../../devkit/database';

let database: TestDatabase | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  database = await startTestDatabase((line) => console.log(`  [db] ${line}`));
  process.env.TEST_MONGODB_URI = database.uri;
  process.env.TEST_DATABASE_KIND = database.kind;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await database?.stop();
}
