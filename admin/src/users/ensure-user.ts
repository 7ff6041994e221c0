/**
 * Brings the application's MongoDB user in line with the Kubernetes Secret: creates it, or resets its
 * password and roles when it already exists. Idempotent, so it can run on every change.
 *
 * Why not the mongo image's docker-entrypoint-initdb.d? Those scripts run only on an EMPTY data directory:
 * with kept data (retainOnDelete, a reused hostPath, Minikube's provisioner reusing a directory) or a
 * rotated password, the user would keep its old password and the service could never log in.
 */
import type { Db } from 'mongodb';

export interface AppUser {
  username: string;
  password: string;
  /** The application database: the user is defined there and may read and write only there. */
  database: string;
}

export interface EnsureOutcome {
  action: 'created' | 'updated';
  /**
   * 'granted': readWrite on the application database only. 'unsupported': the server cannot grant roles
   * (FerretDB, the stand-in of the local node tests, refuses any role), so the user has none: it can log
   * in, but least privilege is not enforced there. MongoDB always grants them.
   */
  roles: 'granted' | 'unsupported';
}

/** MongoDB's error code for createUser on a user that exists (a concurrent run got there first). */
const USER_EXISTS = 51003;
/** The server does not implement an argument (FerretDB's answer to `roles`). */
const NOT_IMPLEMENTED = 238;

/** Least privilege: readWrite on the application database, nothing else. */
export const appRoles = (database: string) => [{ role: 'readWrite', db: database }];

export async function ensureUser(db: Db, user: AppUser): Promise<EnsureOutcome> {
  const info = (await db.command({ usersInfo: { user: user.username, db: user.database } })) as { users?: unknown[] };
  const exists = (info.users ?? []).length > 0;
  let roles: EnsureOutcome['roles'] = 'granted';
  // Keys in this order: the command name must come first.
  const send = async (command: 'createUser' | 'updateUser') => {
    try {
      await db.command({ [command]: user.username, pwd: user.password, roles: roles === 'granted' ? appRoles(user.database) : [] });
    } catch (error) {
      if ((error as { code?: number }).code !== NOT_IMPLEMENTED || roles !== 'granted') throw error;
      roles = 'unsupported';
      await db.command({ [command]: user.username, pwd: user.password, roles: [] });
    }
  };
  if (!exists) {
    try {
      await send('createUser');
      return { action: 'created', roles };
    } catch (error) {
      if ((error as { code?: number }).code !== USER_EXISTS) throw error;
    }
  }
  await send('updateUser');
  return { action: 'updated', roles };
}
