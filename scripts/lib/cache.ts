/** Content hashes that key the per-machine build cache (~/.cache/koa-mongodb): a change of source, a new build. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Short hash of every file under `dirs` (names and contents) and of `extra`. */
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
