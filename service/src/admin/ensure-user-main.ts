/**
 * `node dist/admin/ensure-user-main.js`: the entry point of the `mongodb-users` Job. Logs in as MongoDB's
 * root user (credentials from the Secret, through env), waits for the server to accept it, and reconciles
 * the application user (see ensure-user.ts). One JSON line per event on stdout, never a credential;
 * exit 0 when the user is in line with the Secret, 1 when it could not be done in time.
 */
import { MongoClient } from 'mongodb';
import { ensureUser } from './ensure-user';

interface JobEnv {
  uri: string;
  admin: { username: string; password: string };
  user: { username: string; password: string; database: string };
  deadlineMs: number;
}

function readEnv(env: NodeJS.ProcessEnv): JobEnv {
  const missing: string[] = [];
  const need = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') missing.push(name);
    return value ?? '';
  };
  const parsed: JobEnv = {
    uri: need('MONGODB_URI'),
    admin: { username: need('MONGODB_ADMIN_USER'), password: need('MONGODB_ADMIN_PASSWORD') },
    user: { username: need('MONGODB_USER'), password: need('MONGODB_PASSWORD'), database: need('MONGODB_DB') },
    deadlineMs: Number(env.ENSURE_USER_TIMEOUT_MS ?? 240_000),
  };
  if (missing.length > 0) throw new Error(`missing environment: ${missing.join(', ')}`);
  if (!Number.isFinite(parsed.deadlineMs) || parsed.deadlineMs <= 0) throw new Error('ENSURE_USER_TIMEOUT_MS must be a positive number');
  return parsed;
}

const log = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);

async function main(): Promise<number> {
  const env = readEnv(process.env);
  const deadline = Date.now() + env.deadlineMs;
  for (let attempt = 1; ; attempt += 1) {
    const client = new MongoClient(env.uri, {
      auth: env.admin,
      authSource: 'admin',
      serverSelectionTimeoutMS: 5_000,
      connectTimeoutMS: 5_000,
    });
    try {
      const outcome = await ensureUser(client.db(env.user.database), env.user);
      log({ msg: `application user ${outcome.action}`, user: env.user.username, database: env.user.database, attempt });
      if (outcome.roles === 'unsupported') {
        log({ level: 'warn', msg: `this server cannot grant roles (a stand-in such as FerretDB): ${env.user.username} is not limited to readWrite on ${env.user.database}` });
      }
      return 0;
    } catch (error) {
      const message = (error as Error).message;
      // mongod may still be starting (or restarting after an OOM): try again until the deadline.
      if (Date.now() + 2_000 > deadline) {
        log({ level: 'error', msg: 'could not reconcile the application user', error: message, attempt });
        return 1;
      }
      log({ level: 'warn', msg: 'database not usable yet; retrying', error: message, attempt });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    } finally {
      await client.close().catch(() => undefined);
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    log({ level: 'error', msg: error.message });
    process.exit(1);
  },
);
