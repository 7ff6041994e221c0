/**
 * `npm run db:local`: FerretDB v1.24.2 (SQLite backend) in the foreground on
 * 127.0.0.1:27017, data kept in ./.ferretdb-data. Ctrl-C stops it.
 */
import path from 'node:path';
import { startFerretDb } from '../ferretdb';
import { REPO_ROOT } from '../paths';

async function main(): Promise<void> {
  const listen = process.env.DB_LISTEN ?? '127.0.0.1:27017';
  const dataDir = process.env.DB_DATA_DIR ?? path.join(REPO_ROOT, '.ferretdb-data');
  const db = await startFerretDb({ listen, dataDir, inheritStderr: true });
  process.stdout.write(`FerretDB listening: ${db.uri} (data in ${dataDir}); Ctrl-C to stop\n`);
  const stop = () => void db.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  db.process.once('exit', (code) => process.exit(code ?? 1));
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
