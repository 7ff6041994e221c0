/**
 * Finds or starts the MongoDB-compatible database that tests and benchmarks use:
 *   1. MONGODB_URI when set (any real mongod or Atlas cluster);
 *   2. FerretDB (devkit/go/mongo-standin's ferretdb-local) where Go is installed;
 *   3. a real mongod from mongodb-memory-server where its binary can be downloaded;
 * otherwise it fails at once, saying what to install or set.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFerretDb } from './ferretdb';
import { haveGo } from './go-build';

export interface TestDatabase {
  uri: string;
  kind: 'external' | 'ferretdb' | 'mongodb-memory-server';
  stop(): Promise<void>;
}

export async function startTestDatabase(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<TestDatabase> {
  const external = process.env.MONGODB_URI;
  if (external !== undefined && external.trim() !== '') {
    log('using the database at MONGODB_URI');
    return { uri: external, kind: 'external', stop: async () => undefined };
  }

  const failures: string[] = [];
  if (haveGo()) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'koa-mongodb-ferretdb-'));
    try {
      const ferret = await startFerretDb({ dataDir });
      log(`started FerretDB v1.24.2 (SQLite) at ${ferret.uri}`);
      return {
        uri: ferret.uri,
        kind: 'ferretdb',
        async stop() {
          await ferret.stop();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      failures.push(`FerretDB: ${(error as Error).message}`);
    }
  } else {
    failures.push('FerretDB: no `go` on PATH (Go 1.24+ builds devkit/go/mongo-standin/cmd/ferretdb-local)');
  }

  try {
    const { MongoMemoryServer } = await import('mongodb-memory-server-core');
    const server = await MongoMemoryServer.create();
    log(`started mongod (mongodb-memory-server) at ${server.getUri()}`);
    return { uri: server.getUri(), kind: 'mongodb-memory-server', stop: async () => void (await server.stop()) };
  } catch (error) {
    failures.push(`mongodb-memory-server: ${(error as Error).message.split('\n')[0]}`);
  }

  throw new Error(
    [
      'No MongoDB-compatible database for the tests. Do one of:',
      '  - set MONGODB_URI to a running mongod (e.g. mongodb://localhost:27017/),',
      '  - install Go 1.24+ so FerretDB can be built from devkit/go/mongo-standin,',
      '  - allow mongodb-memory-server to download a mongod binary.',
      'What was tried:',
      ...failures.map((failure) => `  - ${failure}`),
    ].join('\n'),
  );
}
