/**
 * `node dist/users/ensure-user-main.js` (the admin image): the entry point of the `mongodb-users` Job. Logs in as MongoDB's
 * root user, waits for the server to accept it, and creates or updates the current application user and,
 * when MONGODB_BACKUP_USER is set, the backup user (see ensure-user.ts). Exit 0 when the user is in line with the Secret, 1 when it could not be done in time.
 */
import { ensureUser } from './ensure-user';
import { exitWith, log, readEnv, runAsAdmin } from './job';

exitWith(async () => {
  const env = readEnv(process.env);
  return runAsAdmin(env, 'could not reconcile the application user', async (db, attempt) => {
    for (const user of env.users) {
      const outcome = await ensureUser(db, user);
      log({ msg: `${user.kind} user ${outcome.action}`, user: user.username, database: user.database, roles: user.roles, attempt });
    }
  });
});
