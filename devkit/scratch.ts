/**
 * Temporary directories that go when the process that made them exits: the tests' Pulumi state and
 * homes, load reports, kubeconfigs, and the temp files Pulumi and its plugins write (TMPDIR pointed at
 * one of these). Removed on a normal exit and on a failing one alike; `KEEP_SCRATCH=1` keeps them to look at.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (made.length === 0 && !process.env.KEEP_SCRATCH) {
    process.on('exit', () => {
      for (const each of made) rmSync(each, { recursive: true, force: true });
    });
  }
  made.push(dir);
  return dir;
}
