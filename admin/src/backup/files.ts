/**
 * The scheduled backups' directory (the backups volume): their names, listing and pruning. The CronJob's
 * program (backup-job.ts) writes and prunes; `npm run backup -- --list` and `npm run restore -- --from`
 * list and read through list-backups.ts, in a short-lived pod of the same image.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

/** `backup-20261206T031700Z.jsonl.gz`: UTC, no colons (a file name anywhere), sorted by name = by time. */
export const BACKUP_NAME = /^backup-\d{8}T\d{6}Z\.jsonl\.gz$/;

export function backupName(at: Date): string {
  return `backup-${at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}.jsonl.gz`;
}

export interface BackupFile {
  name: string;
  bytes: number;
  /** ISO time of the file's last write (when it was renamed into place, it was whole). */
  modified: string;
}

/** The whole backups in `dir`, oldest first (a `.partial` is never one). */
export function listBackups(dir: string): BackupFile[] {
  return readdirSync(dir)
    .filter((name) => BACKUP_NAME.test(name))
    .sort()
    .map((name) => {
      const stat = statSync(path.join(dir, name));
      return { name, bytes: stat.size, modified: stat.mtime.toISOString() };
    });
}

/**
 * Keeps the newest `keep` backups and deletes the rest, and any `.partial` but `current` (a run that was
 * killed, say by the OOM killer or its deadline, leaves one; Forbid means no other run writes now).
 */
export function prune(dir: string, keep: number, current?: string): { deleted: string[] } {
  const deleted: string[] = [];
  const backups = listBackups(dir);
  for (const file of backups.slice(0, Math.max(0, backups.length - keep))) {
    rmSync(path.join(dir, file.name), { force: true });
    deleted.push(file.name);
  }
  for (const name of readdirSync(dir).filter((name) => name.endsWith('.partial') && name !== current)) {
    rmSync(path.join(dir, name), { force: true });
    deleted.push(name);
  }
  return { deleted };
}
