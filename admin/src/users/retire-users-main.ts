/**
 * `node dist/users/retire-users-main.js` (the admin image): the entry point of the `mongodb-retire-users` Job, which runs
 * after the service's rollout (see retire-users.ts). Besides the users Job's environment it takes
 * MONGODB_USER_PREFIX and DRAIN_SECONDS.
 */
import { exitWith, log, readEnv, runAsAdmin } from './job';
import { retireEarlierUsers } from './retire-users';

exitWith(async () => {
  const env = readEnv(process.env);
  const prefix = process.env.MONGODB_USER_PREFIX ?? '';
  const drainSeconds = Number(process.env.DRAIN_SECONDS ?? 0);
  if (!prefix) throw new Error('missing environment: MONGODB_USER_PREFIX');
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0) throw new Error('DRAIN_SECONDS must be a number of seconds');
  return runAsAdmin(env, 'could not retire the earlier application users', async (db, attempt) => {
    const dropped = await retireEarlierUsers(db, {
      prefix,
      current: env.user.username,
      drainMs: drainSeconds * 1000,
      onWait: (users, ms) => log({ msg: 'waiting for the old pods to finish before dropping their users', users, seconds: ms / 1000 }),
    });
    log({ msg: dropped.length ? 'earlier application users dropped' : 'no earlier application user', users: dropped, current: env.user.username, attempt });
  });
});
