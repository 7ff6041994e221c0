/**
 * `npm run restore -- --in FILE`: restores a file written by `npm run backup`, checked and all or nothing
 * (see docs/backup.md). The whole file is verified before anything is written; a database that holds
 * documents is only replaced with --drop; a failure part-way leaves the data as it was.
 *
 *   npm run restore -- --in backup.jsonl.gz [--drop]              the stack's MongoDB, through the cluster
 *   MONGODB_URI=mongodb://… npm run restore -- --in FILE          that server directly (MONGODB_DB, default flask_db)
 *   npm run restore -- --in FILE --check                          only verify the file; no database needed
 *   npm run restore -- --from NAME [--drop]                       a scheduled backup from the stack's backups volume
 *
 * Flags: --in FILE or --from NAME (one of them), --drop, --check, --db NAME, and for the cluster --stack, --context, --namespace.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bytes, count, EXIT, mb, plural, Progress, rates, runTool, seconds, userPath } from './backup/cli';
import { readArchive } from '../admin/src/backup/archive';
import { restoreArchive, type RestoreProgress } from '../admin/src/backup/load';
import { connect, resolveTarget, stackFileValue, UsageError } from './backup/target';
import { openBackupVolume } from './backup/volume';

const USAGE = 'usage: npm run restore -- (--in FILE | --from NAME) [--drop] [--check] [--db NAME] [--stack NAME] [--context CONTEXT] [--namespace NAMESPACE]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        in: { type: 'string', short: 'i' },
        from: { type: 'string' },
        drop: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        db: { type: 'string' },
        stack: { type: 'string' },
        context: { type: 'string' },
        namespace: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (values.in && values.from) throw new UsageError(`--in and --from do not go together\n${USAGE}`);
  if (!values.in && !values.from) throw new UsageError(`--in FILE or --from NAME is required\n${USAGE}`);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  if (values.from) {
    // A scheduled backup: copied from the backups volume into a private temporary file, then restored from
    // there exactly as --in restores a file (checked whole first, then all or nothing).
    const target = resolveTarget(values, process.env, stackFileValue(path.resolve(__dirname, '..')));
    const started = Date.now();
    const volume = await openBackupVolume(target);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'koa-mongodb-restore-'));
    try {
      const local = path.join(dir, values.from.replace(/[^A-Za-z0-9_.-]/g, '_'));
      const size = await volume.fetch(values.from, local);
      say(`restore: copied ${values.from} (${bytes(size)}) from ${volume.describe} in ${seconds(Date.now() - started)}`);
      await volume.close();
      return await restoreFile(values, local, started);
    } finally {
      await volume.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return restoreFile(values, userPath(values.in!, 'restore'), Date.now());
}

interface RestoreFlags {
  drop: boolean;
  check: boolean;
  db?: string;
  stack?: string;
  context?: string;
  namespace?: string;
}

async function restoreFile(values: RestoreFlags, file: string, started: number): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const progress = new Progress();
  const showProgress = (state: RestoreProgress) =>
    progress.update(
      state.phase === 'checking'
        ? `restore: checking the file: ${count(state.documents)} documents, ${mb(state.fileBytes)} read, ${seconds(Date.now() - started)}`
        : `restore: loading: ${count(state.documents)} of ${count(state.totalDocuments ?? 0)} documents, ${seconds(Date.now() - started)}`,
    );

  // The whole file is checked first: before anything is written, and before any database is asked.
  const manifest = await readArchive(file, { progress: (fileBytes, documents) => showProgress({ phase: 'checking', fileBytes, documents }) });
  if (values.check) {
    progress.done();
    say(`restore: ${file} is whole: backup of database ${manifest.header.database} made ${manifest.header.createdAt}${manifest.header.server ? ` (server ${manifest.header.server})` : ''}`);
    for (const c of manifest.collections) say(`  ${c.name}: ${plural(c.documents, 'document')}, ${bytes(c.bytes)}, ${plural(c.indexes.length, 'index', 'indexes')}, sha256 ${c.sha256.slice(0, 16)}…`);
    say(`restore: checked ${plural(manifest.collections.length, 'collection')}, ${plural(manifest.documents, 'document')}, ${bytes(manifest.bytes)} in ${seconds(Date.now() - started)}; nothing written`);
    return EXIT.ok;
  }

  const target = resolveTarget(values, process.env, stackFileValue(path.resolve(__dirname, '..')));
  const connection = await connect(target);
  // Ctrl-C: stop between batches and undo (never in the middle of the swap).
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    process.stderr.write('\nrestore: stopping; undoing what this run loaded\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    say(`restore: ${file} → ${connection.describe}`);
    const summary = await restoreArchive(connection.db, file, {
      checked: manifest,
      drop: values.drop,
      progress: showProgress,
      note: (line) => say(`restore: ${line}`),
      interrupted: () => interrupted,
    });
    progress.done();
    const ms = Date.now() - started;
    say(`restore: the file is whole (${plural(manifest.documents, 'document')}, sha256 ${manifest.sha256.slice(0, 16)}…, backup of ${manifest.header.database} made ${manifest.header.createdAt})`);
    for (const c of summary.collections) {
      const check =
        c.checksum === 'exact'
          ? `checksum ${c.sum.slice(0, 16)}… = backup`
          : `checksum = backup except -0.0, which this server stores as 0.0 (${plural(c.negativeZeroDocuments, 'document')})`;
      say(`  ${c.name}: ${plural(c.documents, 'document')}, ${bytes(c.bytes)}, ${plural(c.indexes, 'index', 'indexes')}; count ${count(c.counted)} = backup, ${check}${c.replaced ? '; replaced the earlier collection' : ''}`);
    }
    if (summary.untouched.length) say(`restore: left as they were (not in the backup): ${summary.untouched.join(', ')}`);
    say(
      `restore: done: ${plural(summary.collections.length, 'collection')}, ${plural(manifest.documents, 'document')}, ${bytes(manifest.bytes)} into database ${summary.database}, ` +
        `in ${seconds(ms)} (${rates(manifest.documents, manifest.bytes, ms)})`,
    );
    return EXIT.ok;
  } finally {
    progress.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await connection.close();
  }
}

runTool('restore', main);
