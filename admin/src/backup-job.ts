/**
 * The backup CronJob's program (components/backups.ts): one backup of MONGODB_DB into BACKUP_DIR as
 * `backup-<UTC time>.jsonl.gz`, written as `<name>.partial`, flushed and renamed (a file with the final name
 * is whole), then all but the newest BACKUP_KEEP deleted. One JSON line per event on stdout, never a
 * credential; exit 1 on failure (the Job fails, and `kubectl get cronjob`/`npm run diagnose` show it).
 *
 * Environment: MONGODB_URI (no credentials in it), MONGODB_DB, BACKUP_DIR, BACKUP_KEEP, and MONGODB_USER with
 * MONGODB_PASSWORD (from the Secret; both or neither, as the service takes them: a server without
 * authentication, the tests' FerretDB, is reached without).
 */
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { writeBackupFile } from './backup/dump';
import { backupName, prune } from './backup/files';

const log = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const missing = ['MONGODB_URI', 'MONGODB_DB', 'BACKUP_DIR', 'BACKUP_KEEP'].filter((name) => !env[name]);
  if (Boolean(env.MONGODB_USER) !== Boolean(env.MONGODB_PASSWORD)) missing.push(env.MONGODB_USER ? 'MONGODB_PASSWORD' : 'MONGODB_USER');
  if (missing.length > 0) {
    log({ level: 'error', msg: 'backup failed', error: `missing environment: ${missing.join(', ')}` });
    return 1;
  }
  const keep = Number(env.BACKUP_KEEP);
  if (!Number.isInteger(keep) || keep < 1) {
    log({ level: 'error', msg: 'backup failed', error: 'BACKUP_KEEP must be a whole number of at least 1' });
    return 1;
  }
  const dir = env.BACKUP_DIR!;
  const database = env.MONGODB_DB!;
  const started = Date.now();
  const name = backupName(new Date(started));
  const uri = env.MONGODB_URI!;
  // MongoDB may be restarting: 30 s to find it (unless the URI says otherwise).
  const timeouts = Object.fromEntries(
    Object.entries({ serverSelectionTimeoutMS: 30_000, connectTimeoutMS: 10_000 }).filter(([option]) => !new RegExp(`[?&]${option}=`, 'i').test(uri)),
  );
  const client = new MongoClient(uri, {
    appName: 'koa-mongodb-backup-job',
    ...timeouts,
    // Credentials as options, never in the URI: no message built from the URI can hold the password.
    ...(env.MONGODB_USER ? { auth: { username: env.MONGODB_USER, password: env.MONGODB_PASSWORD! }, authSource: database } : {}),
  });
  try {
    await client.connect();
    const summary = await writeBackupFile(client.db(database), path.join(dir, name), {
      note: (line) => log({ level: 'warn', msg: line }),
      now: () => new Date(started),
    });
    const { deleted } = prune(dir, keep, `${name}.partial`);
    log({
      level: 'info',
      msg: 'backup written',
      file: name,
      database,
      // Who read it (the backup user's name, never its password): shows the Job ran with its own user.
      user: env.MONGODB_USER,
      collections: summary.collections.map((c) => ({ name: c.name, documents: c.documents })),
      documents: summary.documents,
      bytes: summary.bytes,
      fileBytes: summary.fileBytes,
      sha256: summary.sha256,
      seconds: (Date.now() - started) / 1000,
      deleted,
    });
    return 0;
  } catch (error) {
    log({ level: 'error', msg: 'backup failed', file: name, error: (error as Error).message.split('\n')[0] });
    return 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}

if (require.main === module) {
  void main().then((code) => (process.exitCode = code));
}
