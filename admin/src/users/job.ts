/**
 * What the database-admin Jobs share: their environment (MongoDB's root login from the Secret, the
 * application user and the backup user), one JSON line per event on stdout and never a credential, and the retry loop
 * (mongod may still be starting, or restarting after an OOM) bounded by ENSURE_USER_TIMEOUT_MS.
 */
import { MongoClient, type Db } from 'mongodb';
import { appRoles, backupRoles, type ManagedUser } from './ensure-user';

export interface JobEnv {
  uri: string;
  admin: { username: string; password: string };
  /** The application user (MONGODB_USER, MONGODB_PASSWORD). */
  user: ManagedUser;
  /** Every user the Jobs keep: the application user, and the backup user when MONGODB_BACKUP_USER is set. */
  users: ManagedUser[];
  deadlineMs: number;
}

export function readEnv(env: NodeJS.ProcessEnv): JobEnv {
  const missing: string[] = [];
  const need = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') missing.push(name);
    return value ?? '';
  };
  const uri = need('MONGODB_URI');
  const admin = { username: need('MONGODB_ADMIN_USER'), password: need('MONGODB_ADMIN_PASSWORD') };
  const app = { username: need('MONGODB_USER'), password: need('MONGODB_PASSWORD'), database: need('MONGODB_DB') };
  const user: ManagedUser = { ...app, kind: 'application', roles: appRoles(app.database) };
  const users = [user];
  // Both or neither (the stack sets both, from MongoDB's Secret).
  if (env.MONGODB_BACKUP_USER || env.MONGODB_BACKUP_PASSWORD) {
    const backup = { username: need('MONGODB_BACKUP_USER'), password: need('MONGODB_BACKUP_PASSWORD'), database: app.database };
    users.push({ ...backup, kind: 'backup', roles: backupRoles(app.database) });
  }
  const parsed: JobEnv = { uri, admin, user, users, deadlineMs: Number(env.ENSURE_USER_TIMEOUT_MS ?? 240_000) };
  if (missing.length > 0) throw new Error(`missing environment: ${missing.join(', ')}`);
  if (!Number.isFinite(parsed.deadlineMs) || parsed.deadlineMs <= 0) throw new Error('ENSURE_USER_TIMEOUT_MS must be a positive number');
  return parsed;
}

export const log = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);

/** A refusal that retrying cannot change: the Job fails at once. */
export class Refusal extends Error {}

/** Runs `work` as root against the application database until it succeeds or the deadline passes; the exit code. */
export async function runAsAdmin(env: JobEnv, failure: string, work: (db: Db, attempt: number) => Promise<void>): Promise<number> {
  const deadline = Date.now() + env.deadlineMs;
  for (let attempt = 1; ; attempt += 1) {
    const client = new MongoClient(env.uri, { auth: env.admin, authSource: 'admin', serverSelectionTimeoutMS: 5_000, connectTimeoutMS: 5_000 });
    try {
      await work(client.db(env.user.database), attempt);
      return 0;
    } catch (error) {
      const message = (error as Error).message;
      if (error instanceof Refusal || Date.now() + 2_000 > deadline) {
        log({ level: 'error', msg: failure, error: message, attempt });
        return 1;
      }
      log({ level: 'warn', msg: 'database not usable yet; retrying', error: message, attempt });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    } finally {
      await client.close().catch(() => undefined);
    }
  }
}

/** The process around a Job's main: exit with its code, or 1 with the message of what threw. */
export function exitWith(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      log({ level: 'error', msg: error.message });
      process.exit(1);
    },
  );
}
