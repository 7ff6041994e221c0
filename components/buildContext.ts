import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The files of the service's build context: exactly what service/.dockerignore
 * lets through (package files, tsconfig, src/), plus the Dockerfile itself.
 */
export const CONTEXT_ENTRIES = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'src'];

/**
 * A short content hash of the build context. Used as the image tag, so the
 * reference the Deployment uses changes exactly when the image's inputs change:
 * every service change rolls out, and an infrastructure-only change rebuilds nothing.
 */
export function contextHash(dir: string, entries: readonly string[] = CONTEXT_ENTRIES): string {
  const hash = createHash('sha256');
  const visit = (relative: string) => {
    const full = path.join(dir, relative);
    if (statSync(full).isDirectory()) {
      for (const child of readdirSync(full).sort()) visit(path.posix.join(relative, child));
    } else {
      hash.update(`${relative}\0`).update(readFileSync(full)).update('\0');
    }
  };
  for (const entry of entries) visit(entry);
  return hash.digest('hex').slice(0, 16);
}
