/**
 * Brings a MongoDB user (the application's, the backup CronJob's) in line with the Kubernetes Secret: creates
 * it, or resets its password and roles when it already exists. Idempotent, so it can run on every change.
 *
 * Why not the mongo image's docker-entrypoint-initdb.d? Those scripts run only on an EMPTY data directory:
 * with kept data (retainOnDelete, a reused hostPath, Minikube's provisioner reusing a directory) or a
 * rotated password, the user would keep its old password and the service could never log in.
 */
import type { Db } from 'mongodb';

export interface AppUser {
  username: string;
  password: string;
  /** The application database: the user is defined there and may act only there (its roles). */
  database: string;
}

/** A user these Jobs keep: the application's or the backup CronJob's, with the roles it gets. */
export interface ManagedUser extends AppUser {
  /** What it is for, in the Jobs' log lines: `application` or `backup`. */
  kind: string;
  roles: { role: string; db: string }[];
}

export interface EnsureOutcome {
  action: 'created' | 'updated';
}

/** MongoDB's error code for createUser on a user that exists (a concurrent run got there first). */
const USER_EXISTS = 51003;

/** Least privilege: readWrite on the application database, nothing else. */
export const appRoles = (database: string) => [{ role: 'readWrite', db: database }];
/**
 * The backup CronJob's: read on the application database, exactly what it does (find, listCollections,
 * listIndexes). Not MongoDB's `backup` role: that one is granted on the admin database and reads every
 * database of the server.
 */
export const backupRoles = (database: string) => [{ role: 'read', db: database }];

export async function ensureUser(db: Db, user: ManagedUser): Promise<EnsureOutcome> {
  const info = (await db.command({ usersInfo: { user: user.username, db: user.database } })) as { users?: unknown[] };
  const exists = (info.users ?? []).length > 0;
  // Keys in this order: the command name must come first.
  const send = (command: 'createUser' | 'updateUser') => db.command({ [command]: user.username, pwd: user.password, roles: user.roles });
  if (!exists) {
    try {
      await send('createUser');
      return { action: 'created' };
    } catch (error) {
      if ((error as { code?: number }).code !== USER_EXISTS) throw error;
    }
  }
  await send('updateUser');
  return { action: 'updated' };
}
