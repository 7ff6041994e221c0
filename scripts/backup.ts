/**
 * `npm run backup -- --out FILE`: a backup of the stack's database into one local file (gzip'd canonical
 * Extended JSON; see docs/backup.md), checked by `npm run restore` and readable by mongoimport.
 *
 *   npm run backup -- --out backup.jsonl.gz                       the stack's MongoDB, through the cluster
 *   MONGODB_URI=mongodb://… npm run backup -- --out FILE          that server directly (MONGODB_DB, default flask_db)
 *   npm run backup -- --list                                      the scheduled backups on the stack's backups volume
 *
 * Flags: --out FILE (required), --db NAME, and for the cluster --stack (PULUMI_STACK, dev),
 * --context and --namespace (the stack's kubeContext and namespace).
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bytes, count, EXIT, mb, plural, Progress, rates, runTool, seconds, userPath } from './backup/cli';
import { writeBackupFile } from '../admin/src/backup/dump';
import { connect, resolveTarget, stackFileValue, UsageError } from './backup/target';
import { openBackupVolume } from './backup/volume';

const USAGE = 'usage: npm run backup -- --out FILE [--db NAME] [--stack NAME] [--context CONTEXT] [--namespace NAMESPACE]\n' +
  '       npm run backup -- --list [--stack NAME] [--context CONTEXT] [--namespace NAMESPACE]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: 'string', short: 'o' },
        list: { type: 'boolean', default: false },
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
  if (values.list) {
    if (values.out) throw new UsageError(`--list and --out do not go together\n${USAGE}`);
    return list(resolveTarget(values, process.env, stackFileValue(path.resolve(__dirname, '..'))));
  }
  if (!values.out) throw new UsageError(`--out FILE is required\n${USAGE}`);
  const out = userPath(values.out, 'backup');
  if (!existsSync(path.dirname(out)) || !statSync(path.dirname(out)).isDirectory()) throw new UsageError(`no such directory: ${path.dirname(out)}`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`${out} is a directory; give a file name`);

  const target = resolveTarget(values, process.env, stackFileValue(path.resolve(__dirname, '..')));
  const started = Date.now();
  const connection = await connect(target);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const progress = new Progress();
  // Ctrl-C: no half-written file stays behind.
  const onSignal = () => {
    rmSync(`${out}.partial`, { force: true });
    process.stderr.write('\nbackup: stopped; no file written\n');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // A database that is not there: a typo in MONGODB_DB or --db, not an empty backup.
    const databases = await connection.db
      .admin()
      .listDatabases({ nameOnly: true, authorizedDatabases: true })
      .then((reply) => reply.databases.map((database) => database.name))
      .catch(() => undefined);
    if (databases && !databases.includes(target.database)) {
      throw new UsageError(`there is no database ${target.database} on this server (there are: ${databases.join(', ') || 'none'}); check MONGODB_DB or --db`);
    }
    say(`backup: ${connection.describe} → ${out}`);
    const summary = await writeBackupFile(connection.db, out, {
      note: (line) => say(`backup: ${line}`),
      progress: (state) =>
        progress.update(
          `backup: ${state.collection}: ${count(state.documents)}${state.expected ? ` of ~${count(state.expected)}` : ''} documents, ${mb(state.bytes)}, ${seconds(Date.now() - started)}`,
        ),
    });
    progress.done();
    const ms = Date.now() - started;
    for (const c of summary.collections) say(`  ${c.name}: ${plural(c.documents, 'document')}, ${bytes(c.bytes)}, ${plural(c.indexes, 'index', 'indexes')}`);
    say(
      `backup: done: ${plural(summary.collections.length, 'collection')}, ${plural(summary.documents, 'document')}, ${bytes(summary.bytes)} of Extended JSON, ` +
        `${bytes(summary.fileBytes)} written to ${out}, in ${seconds(ms)} (${rates(summary.documents, summary.bytes, ms)}); sha256 ${summary.sha256.slice(0, 16)}…`,
    );
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.done();
    await connection.close();
  }
}

/** `--list`: the scheduled backups on the stack's backups volume, oldest first, with their sizes and times. */
async function list(target: Parameters<typeof openBackupVolume>[0]): Promise<number> {
  const started = Date.now();
  const volume = await openBackupVolume(target);
  try {
    const files = await volume.list();
    const say = (line: string) => process.stdout.write(`${line}\n`);
    say(`backup: ${plural(files.length, 'backup')} on ${volume.describe}${files.length ? ', oldest first' : ''} (${seconds(Date.now() - started)}):`);
    const width = Math.max(0, ...files.map((file) => String(file.bytes).length));
    for (const file of files) say(`  ${file.name}  ${String(file.bytes).padStart(width)} bytes  written ${file.modified.replace(/\.\d{3}Z$/, 'Z')}`);
    if (files.length) say(`restore one with: npm run restore -- --from ${files.at(-1)!.name} [--drop]`);
    else say('  (none yet: the CronJob mongodb-backups writes one on its schedule; to run it now: kubectl create job --from=cronjob/mongodb-backups backup-now)');
    return EXIT.ok;
  } finally {
    await volume.close();
  }
}

runTool('backup', main);
