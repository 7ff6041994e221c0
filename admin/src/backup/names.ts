/**
 * Names of the collections restore works in, beside the real ones, for one run `<run>`:
 *   __restore_<run>_<n>   the n-th collection of the archive, being loaded and checked;
 *   __replaced_<run>_<n>  the collection it replaces, kept until the swap has succeeded.
 * Short, so that they fit any server's namespace limit whatever the database's name.
 */
export const LOADING_PREFIX = '__restore_';
export const REPLACED_PREFIX = '__replaced_';

export const loadingName = (run: string, index: number) => `${LOADING_PREFIX}${run}_${index}`;
export const replacedName = (run: string, index: number) => `${REPLACED_PREFIX}${run}_${index}`;

/** A collection of restore's own, never the user's data as such. */
export const isWorkCollection = (name: string) => name.startsWith(LOADING_PREFIX) || name.startsWith(REPLACED_PREFIX);

/** What MongoDB accepts as a database name (and a little stricter: no spaces). */
export function checkDatabaseName(name: string): string | undefined {
  if (name === '') return 'the database name is empty';
  if (Buffer.byteLength(name) > 63) return `database name "${name}" is longer than 63 bytes`;
  if (/[/\\. "$*<>:|?]/.test(name) || name.includes('\0')) return `database name "${name}" has a character MongoDB does not allow in one (/ \\ . space " $ * < > : | ?)`;
  return undefined;
}
