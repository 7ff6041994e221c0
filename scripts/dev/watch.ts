/**
 * Watches what the image is built from, and nothing else: the build context's entries
 * (components/buildContext.ts CONTEXT_ENTRIES, the same list contextHash hashes for the image tag).
 * So a local `npm run build` (dist/), `npm ci` (node_modules/), the Pulumi state directory or a README
 * edit never start an update, and a save anywhere in src/ always does. Only those paths get inotify
 * watches: service/node_modules alone holds thousands of directories.
 */
import { existsSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { CONTEXT_ENTRIES } from '../../components/buildContext';

/** Whether `relative` (a path under service/, either separator) is in the image's build context. */
export function inBuildContext(relative: string, entries: readonly string[] = CONTEXT_ENTRIES): boolean {
  const posix = relative.split(path.sep).join('/');
  if (posix === '' || posix.startsWith('../') || path.isAbsolute(posix)) return false;
  return entries.some((entry) => posix === entry || posix.startsWith(`${entry}/`));
}

export interface ContextWatcher {
  close(): void;
}

/**
 * Calls `onChange(file)` with the path (relative to `serviceDir`) of every changed, added or removed
 * file of the build context. Events come raw (an editor's save is several); the caller coalesces.
 */
export function watchBuildContext(serviceDir: string, onChange: (file: string) => void, entries: readonly string[] = CONTEXT_ENTRIES): ContextWatcher {
  const watchers: FSWatcher[] = [];
  const directories = entries.filter((entry) => existsSync(path.join(serviceDir, entry)) && statSync(path.join(serviceDir, entry)).isDirectory());
  const report = (relative: string) => {
    if (inBuildContext(relative, entries)) onChange(relative.split(path.sep).join('/'));
  };
  // The top-level files (Dockerfile, package.json, …): a watch on the directory itself, not on each
  // file, because editors save by writing a new file and renaming it over the old one, which ends a
  // watch on the old file's inode.
  watchers.push(watch(serviceDir, { persistent: false }, (_event, name) => name && !directories.includes(name.toString()) && report(name.toString())));
  // The directories (src/): recursive.
  for (const entry of directories) {
    watchers.push(watch(path.join(serviceDir, entry), { recursive: true, persistent: false }, (_event, name) => name && report(path.join(entry, name.toString()))));
  }
  for (const watcher of watchers) watcher.on('error', () => undefined); // a watched directory removed: its watch ends, the others go on
  return { close: () => watchers.forEach((watcher) => watcher.close()) };
}
