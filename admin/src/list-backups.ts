/**
 * `node dist/list-backups.js <dir>`: the whole backups in the directory as one JSON array on stdout
 * ([{ name, bytes, modified }], oldest first). Run by `npm run backup -- --list` and `npm run restore --
 * --from` in their short-lived reader pod, which mounts the backups volume read-only.
 */
import { listBackups } from './backup/files';

process.stdout.write(`${JSON.stringify(listBackups(process.argv[2] ?? '/backups'))}\n`);
