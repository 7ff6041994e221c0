/**
 * The second half of a password rotation. Each password gets its own application user (`<prefix>-<tag>`,
 * named by components/databaseUsers.ts), so the pods of the old ReplicaSet keep logging in with the old one
 * while the new pods come up with the new one: no request fails. Once the rollout is done, this drops
 * the earlier users: only after the old pods' grace period, because dropping a user ends what its
 * connections may do. The backup user (`backup-<tag>`, its password derived from the application's) is
 * rotated and retired the same way. Users that do not follow the naming (made by hand) are never touched.
 */
import type { Db } from 'mongodb';
import { Refusal } from './job';

/** `prefix` itself (the name before per-password users) or `prefix-` and the 10 hex digits of a tag. */
export const isEarlierUserName = (name: string, prefix: string, current: string) =>
  name !== current && (name === prefix || (name.startsWith(`${prefix}-`) && /^[0-9a-f]{10}$/.test(name.slice(prefix.length + 1))));

export interface RetireOptions {
  /** Each current user (the application's, the backup user) and the prefix of its names. */
  kept: { prefix: string; current: string }[];
  /** How long the old pods may still be draining (the service's termination grace period). */
  drainMs: number;
  sleep?: (ms: number) => Promise<void>;
  onWait?: (users: string[], ms: number) => void;
}

/** Drops the earlier users of each prefix, the current ones never; the names dropped. */
export async function retireEarlierUsers(db: Db, options: RetireOptions): Promise<string[]> {
  const info = (await db.command({ usersInfo: 1 })) as { users?: { user: string }[] };
  const names = (info.users ?? []).map((user) => user.user);
  const currents = options.kept.map((user) => user.current);
  for (const current of currents) {
    // Never leave the service (or the backups) without a user: the users Job has not run (or was undone) here.
    if (!names.includes(current)) throw new Refusal(`the current user ${current} does not exist; not dropping any user`);
  }
  const earlier = names.filter((name) => !currents.includes(name) && options.kept.some(({ prefix, current }) => isEarlierUserName(name, prefix, current)));
  if (earlier.length === 0) return [];
  options.onWait?.(earlier, options.drainMs);
  await (options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))))(options.drainMs);
  for (const name of earlier) {
    try {
      await db.command({ dropUser: name });
    } catch (error) {
      // Dropped by a concurrent or earlier attempt of this Job: what was asked holds.
      if ((error as { code?: number }).code !== USER_NOT_FOUND) throw error;
    }
  }
  return earlier;
}

/** MongoDB's UserNotFound. */
const USER_NOT_FOUND = 11;
