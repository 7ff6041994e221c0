/**
 * Where things are: the repository, the Go wrapper modules, and the per-machine
 * build cache (~/.cache/koa-mongodb) whose entries are keyed by content hashes,
 * so a change of source means a new build and nothing else does.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..');
/** The Go wrapper modules (one per tool), built from the Go module proxy. */
export const GO_MODULES = path.join(REPO_ROOT, 'devkit', 'go');
export const CACHE_DIR = process.env.KOA_MONGODB_CACHE ?? path.join(os.homedir(), '.cache', 'koa-mongodb');

/**
 * Short hash of every file under `dirs` and of `extra`. Only paths relative to
 * each dir and contents count (never where the dir lives), so moving a wrapper
 * module keeps its cache entry.
 */
export function hashTree(dirs: string[], extra = ''): string {
  const hash = createHash('sha256').update(extra);
  const visit = (root: string, current: string) => {
    for (const name of readdirSync(current).sort()) {
      const full = path.join(current, name);
      if (statSync(full).isDirectory()) visit(root, full);
      else hash.update(path.relative(root, full)).update(readFileSync(full));
    }
  };
  for (const dir of dirs) visit(dir, dir);
  return hash.digest('hex').slice(0, 12);
}

/** The cache entry `<name>-<hash>` for the wrapper modules `modules` (names under devkit/go) and `extra`. */
export function cacheEntry(name: string, modules: string[], extra = ''): string {
  return path.join(CACHE_DIR, `${name}-${hashTree(modules.map((module) => path.join(GO_MODULES, module)), extra)}`);
}
