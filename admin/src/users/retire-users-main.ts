/**
 * `node dist/users/retire-users-main.js` (the admin image): the entry point of the `mongodb-retire-users` Job, which runs
 * after the service's rollout (see retire-users.ts). Besides the users Job's environment it takes
 * MONGODB_USER_PREFIX, MONGODB_BACKUP_USER_PREFIX (with a backup user) and DRAIN_SECONDS.
 */
import { exitWith, log, readEnv, runAsAdmin } from './job';
import { retireEarlierUsers } from './retire-users';

exitWith(async () => {
  const env = readEnv(process.env);
  const prefix = process.env.MONGODB_USER_PREFIX ?? '';
  const drainSeconds = Number(process.env.DRAIN_SECONDS ?? 0);
  if (!prefix) throw new Error('missing environment: MONGODB_USER_PREFIX');
  const backupPrefix = process.env.MONGODB_BACKUP_USER_PREFIX ?? '';
  const backup = env.users.find((user) => user.kind === 'backup');
  if (backup && !backupPrefix) throw new Error('missing environment: MONGODB_BACKUP_USER_PREFIX');
  // Each kept user with the prefix of its earlier names.
  const kept = [{ prefix, current: env.user.username }, ...(backup ? [{ prefix: backupPrefix, current: backup.username }] : [])];
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0) throw new Error('DRAIN_SECONDS must be a number of seconds');
  return runAsAdmin(env, 'could not retire the earlier application users', async (db, attempt) => {
    const dropped = await retireEarlierUsers(db, {
      kept,
      drainMs: drainSeconds * 1000,
      onWait: (users, ms) => log({ msg: 'waiting for the old pods to finish before dropping their users', users, seconds: ms / 1000 }),
    });
    log({ msg: dropped.length ? 'earlier application users dropped' : 'no earlier application user', users: dropped, current: kept.map((user) => user.current), attempt });
  });
});
