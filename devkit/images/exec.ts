/** Small process and path helpers shared by the image builders. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import path from 'node:path';
import { CACHE_DIR, REPO_ROOT } from '../paths';

export { REPO_ROOT };
/** Per-machine cache of base rootfs tarballs, image archives and the builder's data root. */
export const IMAGES_CACHE = path.join(CACHE_DIR, 'images');

/** Runs a command to completion and returns its stdout; throws with its stderr when it fails. */
export function run(command: string, args: string[], options: SpawnSyncOptions & { quiet?: boolean } = {}): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const tail = `${result.stderr ?? ''}${options.quiet ? (result.stdout ?? '') : ''}`.toString().trim().split('\n').slice(-30).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status})\n${tail}`);
  }
  return (result.stdout ?? '').toString();
}
