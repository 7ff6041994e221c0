/**
 * The backup CronJob's program (admin/src/backup-job.ts), run as its container runs it (a process with the
 * Job's environment) against a real Mongo-wire server (FerretDB, as the other backup tests): the file it
 * writes is a whole backup that `npm run restore` restores, its name sorts by time, it keeps the newest
 * BACKUP_KEEP and clears a killed run's `.partial`; a failure is one JSON line and exit 1, leaving no file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { backupName, BACKUP_NAME, listBackups } from '../../admin/src/backup/files';
import type { TestDatabase } from '../../devkit/database';
import { acquireDatabase, releaseDatabase, ROOT, runTool, snapshot } from './backup-helpers';

const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

function runJob(env: Record<string, string>): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; raw: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [path.join(ROOT, 'admin', 'src', 'backup-job.ts')], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let raw = '';
    child.stdout.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, raw, lines: raw.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) }));
  });
}

describe('the backup CronJob\'s program (admin/src/backup-job.ts)', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  let client: MongoClient;
  let db: Db;
  let dir: string;
  const name = `backup_job_${process.pid}`;
  // The tests' FerretDB runs without authentication: the Job's credentials are tried on the unreachable server below.
  const env = (): Record<string, string> => ({ MONGODB_URI: database.uri, MONGODB_DB: name, BACKUP_DIR: dir, BACKUP_KEEP: '3' });

  before(async () => {
    database = await acquireDatabase();
    client = new MongoClient(database.uri);
    await client.connect();
    db = client.db(name);
    await db.collection('data').insertMany(Array.from({ length: 300 }, (_, i) => ({ n: i, text: `document ${i}` })));
    dir = mkdtempSync(path.join(os.tmpdir(), 'backup-job-'));
  });
  after(async () => {
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
    await releaseDatabase();
  });

  it('names a backup by its UTC time, sortable, with no colon', () => {
    assert.equal(backupName(new Date('2026-12-06T03:17:04.512Z')), 'backup-20261206T031704Z.jsonl.gz');
    assert.match(backupName(new Date()), BACKUP_NAME);
    assert.ok(backupName(new Date('2026-12-06T10:00:00Z')) > backupName(new Date('2026-12-06T09:59:59Z')));
  });

  it('writes one whole backup into BACKUP_DIR that npm run restore restores', async () => {
    const run = await runJob(env());
    assert.equal(run.code, 0, run.raw);
    const done = run.lines.at(-1)!;
    assert.equal(done.msg, 'backup written');
    assert.equal(done.documents, 300);
    assert.deepEqual(done.collections, [{ name: 'data', documents: 300 }]);
    const files = readdirSync(dir);
    assert.deepEqual(files, [done.file], 'the backup and nothing else (no .partial)');
    assert.match(String(done.file), BACKUP_NAME);

    const before = await snapshot(db);
    await db.dropDatabase();
    const restore = await runTool('restore', ['--in', path.join(dir, String(done.file))], { MONGODB_URI: database.uri, MONGODB_DB: name });
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(await snapshot(db), before, 'every document back, byte for byte');
  });

  it('keeps the newest BACKUP_KEEP and removes a killed run\'s .partial', async () => {
    // Three older backups (names of earlier hours) and a partial left by a killed run.
    for (const hour of ['01', '02', '03']) writeFileSync(path.join(dir, `backup-20200101T${hour}1700Z.jsonl.gz`), 'old');
    writeFileSync(path.join(dir, 'backup-20200101T041700Z.jsonl.gz.partial'), 'killed');
    const past = new Date('2020-01-01T00:00:00Z');
    utimesSync(path.join(dir, 'backup-20200101T011700Z.jsonl.gz'), past, past);
    const run = await runJob(env());
    assert.equal(run.code, 0, run.raw);
    const kept = listBackups(dir).map((file) => file.name);
    assert.equal(kept.length, 3);
    assert.deepEqual(kept.slice(0, 1), ['backup-20200101T031700Z.jsonl.gz'], 'the newest old one is kept, the two oldest are gone');
    assert.ok(kept.includes(String(run.lines.at(-1)!.file)));
    assert.deepEqual(readdirSync(dir).filter((file) => file.endsWith('.partial')), []);
    assert.deepEqual((run.lines.at(-1)!.deleted as string[]).sort(), ['backup-20200101T011700Z.jsonl.gz', 'backup-20200101T021700Z.jsonl.gz', 'backup-20200101T041700Z.jsonl.gz.partial']);
  });

  it('fails with one JSON line and exit 1, writing nothing, when the server is not there or the environment is short', async () => {
    const before = readdirSync(dir).sort();
    const down = await runJob({ ...env(), MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1500', MONGODB_USER: 'backup', MONGODB_PASSWORD: 'not-printed-Pa55' });
    assert.equal(down.code, 1, down.raw);
    assert.equal(down.lines.length, 1, down.raw);
    assert.equal(down.lines[0].msg, 'backup failed');
    assert.doesNotMatch(down.raw, /not-printed-Pa55/);
    const short = await runJob({ ...env(), MONGODB_USER: 'backup' });
    assert.equal(short.code, 1);
    assert.match(String(short.lines[0].error), /missing environment: MONGODB_PASSWORD/);
    const noKeep = await runJob({ ...env(), BACKUP_KEEP: '0' });
    assert.equal(noKeep.code, 1);
    assert.match(String(noKeep.lines[0].error), /BACKUP_KEEP must be a whole number/);
    assert.deepEqual(readdirSync(dir).sort(), before, 'no file written, none deleted');
  });
});
