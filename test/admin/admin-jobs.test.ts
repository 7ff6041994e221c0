/**
 * The two database-admin Jobs of a password rotation, run as the stack runs them (their entry points,
 * the Secret's values in env) against the MongoDB stand-in (FerretDB v1.24.2 with SCRAM, devkit/go/
 * mongo-standin) on loopback: the users Job makes the new password's user beside the old one, and the
 * retire Job drops the earlier users only after the old pods' grace period, never the current one and
 * never one made by hand; the backup user is made (with `read`) and retired the same way.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { ensureMongoStandInBinaries } from '../../devkit/images/mongo-standin';
import { startServiceProcess } from '../../devkit/service-process';
import { freePort } from '../../devkit/ports';
import { scratchDir } from '../../devkit/scratch';
import { supervise, waitReady, type Supervised } from '../../devkit/supervisor';

/** The Jobs' programs (admin/src/users), run from source through tsx; the admin image runs them compiled. */
const SOURCES = path.resolve(__dirname, '..', '..', 'admin', 'src', 'users');
const TSX = require.resolve('tsx/cjs');
const ROOT_PASSWORD = 'R00t-Pa55-admin-jobs';
const DB = 'flask_db';
const OLD = { username: 'app-0123456789', password: 'Old-Pa55-admin-jobs' };
const NEW = { username: 'app-abcdef0123', password: 'New-Pa55-admin-jobs' };

describe('the users and retire Jobs of a rotation, against the MongoDB stand-in', function () {
  this.timeout(10 * 60_000); // the first run on a machine builds the stand-in (1-3 minutes)
  let mongod: Supervised;
  let uri: string;

  before(async () => {
    const binaries = ensureMongoStandInBinaries((line) => console.log(`      ${line}`));
    const dir = scratchDir('koa-admin-jobs-');
    const init = path.join(dir, 'init');
    mkdirSync(init);
    // Started as root, the stand-in drops to uid 999 as the official image does: its directory must be reachable.
    const data = path.join(dir, 'db');
    mkdirSync(data);
    chmodSync(dir, 0o755);
    if (process.getuid?.() === 0) chownSync(data, 999, 999);
    const port = await freePort();
    uri = `mongodb://127.0.0.1:${port}/`;
    mongod = supervise('mongod (stand-in)', path.join(binaries, 'mongod'), {
      args: ['--bind_ip', '127.0.0.1', '--port', String(port), '--dbpath', data],
      env: { PATH: process.env.PATH, MONGO_INITDB_ROOT_USERNAME: 'root', MONGO_INITDB_ROOT_PASSWORD: ROOT_PASSWORD, MONGO_STANDIN_INITDB_DIR: init },
    });
    await waitReady(mongod, async () => (await login('root', ROOT_PASSWORD, 'admin')) === 'ok', { what: 'the stand-in to accept root', timeoutMs: 60_000 });
  });

  after(async () => {
    await mongod?.stop(5000);
  });

  async function login(username: string, password: string, authSource = DB): Promise<string> {
    const client = new MongoClient(uri, { auth: { username, password }, authSource, serverSelectionTimeoutMS: 3000, directConnection: true });
    try {
      await client.db(DB).command({ ping: 1 });
      await client.db(DB).collection('data').findOne({});
      return 'ok';
    } catch (error) {
      return (error as Error).message;
    } finally {
      await client.close();
    }
  }

  function job(main: string, user: { username: string; password: string }, extra: Record<string, string> = {}): Promise<{ code: number | null; lines: { msg: string; users?: string[]; level?: string }[]; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--require', TSX, path.join(SOURCES, main)], {
        env: {
          PATH: process.env.PATH,
          MONGODB_URI: uri,
          MONGODB_ADMIN_USER: 'root',
          MONGODB_ADMIN_PASSWORD: ROOT_PASSWORD,
          MONGODB_USER: user.username,
          MONGODB_PASSWORD: user.password,
          MONGODB_DB: DB,
          ENSURE_USER_TIMEOUT_MS: '20000',
          ...extra,
        },
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('close', (code) => resolve({ code, output, lines: output.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)) }));
    });
  }
  const retire = (user: typeof NEW, drainSeconds: number) => job('retire-users-main.ts', user, { MONGODB_USER_PREFIX: 'app', DRAIN_SECONDS: String(drainSeconds) });
  /** `work` on the application database, as MongoDB's root user. */
  const asRoot = async <T>(work: (db: Db) => Promise<T>): Promise<T> => {
    const client = new MongoClient(uri, { auth: { username: 'root', password: ROOT_PASSWORD }, authSource: 'admin', directConnection: true });
    try {
      return await work(client.db(DB));
    } finally {
      await client.close();
    }
  };
  const usersInDb = () => asRoot(async (db) => ((await db.command({ usersInfo: 1 })) as { users: { user: string }[] }).users.map((u) => u.user).sort());

  it('the first up: the users Job creates the user, and the retire Job finds nothing to drop and does not wait', async () => {
    assert.equal((await job('ensure-user-main.ts', OLD)).code, 0);
    const started = Date.now();
    const result = await retire(OLD, 30);
    assert.equal(result.code, 0, result.output);
    assert.ok(Date.now() - started < 15_000, `no wait without earlier users (${Date.now() - started} ms)`);
    assert.equal(result.lines.at(-1)!.msg, 'no earlier application user');
    assert.equal(await login(OLD.username, OLD.password), 'ok');
  });

  it('a rotation: both users work until the retire Job has waited the grace period; then only the new one', async () => {
    // Also there: the user of the stack before per-password users ("app"), and one made by hand.
    await asRoot(async (db) => {
      await db.command({ createUser: 'app', pwd: 'Legacy-Pa55', roles: [] });
      await db.command({ createUser: 'reporting', pwd: 'Report-Pa55', roles: [] });
    });
    const created = await job('ensure-user-main.ts', NEW);
    assert.equal(created.code, 0, created.output);
    assert.equal(created.lines[0].msg, 'application user created');
    // The stand-in accepts the readWrite role the Job asks for (and grants nothing): no fallback, no warning.
    assert.deepEqual(created.lines.map((line) => line.level ?? 'info'), ['info'], created.output);
    assert.equal(await login(OLD.username, OLD.password), 'ok', 'the old pods still log in after the users Job');
    assert.equal(await login(NEW.username, NEW.password), 'ok', 'the new pods do');

    const retiring = retire(NEW, 4);
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(await login(OLD.username, OLD.password), 'ok', 'an old pod still draining may open a connection');
    const result = await retiring;
    assert.equal(result.code, 0, result.output);
    assert.ok(Date.now() - started >= 4000, 'it waited the grace period');
    assert.equal(result.lines[0].msg, 'waiting for the old pods to finish before dropping their users');
    assert.deepEqual([...result.lines.at(-1)!.users!].sort(), ['app', OLD.username].sort());
    assert.notEqual(await login(OLD.username, OLD.password), 'ok', 'the old password is refused');
    assert.notEqual(await login('app', 'Legacy-Pa55'), 'ok');
    assert.equal(await login(NEW.username, NEW.password), 'ok');
    assert.equal(await login('reporting', 'Report-Pa55'), 'ok', 'a user made by hand is never touched');
    assert.deepEqual(await usersInDb(), [NEW.username, 'reporting'].sort());
    for (const line of [...created.output.split('\n'), ...result.output.split('\n')]) assert.doesNotMatch(line, /Pa55/, 'no password in the Jobs\' output');
  });

  it('a service pod that starts before its user exists is unready, and Ready soon after the users Job made it', async () => {
    // The rollout does not wait for the users Job (it would on every code change): a new pod may come first.
    const later = { username: 'app-1111111111', password: 'Later-Pa55-admin-jobs' };
    const service = await startServiceProcess({ MONGODB_URI: uri, MONGODB_USER: later.username, MONGODB_PASSWORD: later.password, MONGODB_DB: DB, MONGODB_AUTH_SOURCE: DB, LOG_LEVEL: 'warn' });
    const ready = () => fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(5000) }).then((res) => res.status, () => 0);
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.equal(await ready(), 503, 'not ready while its user does not exist');
      assert.equal((await job('ensure-user-main.ts', later)).code, 0);
      const made = Date.now();
      let status = 0;
      while (Date.now() - made < 20_000 && (status = await ready()) !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(status, 200, service.logs.slice(-10).join('\n'));
      console.log(`      (ready ${Date.now() - made} ms after the users Job)`);
      const posted = await fetch(`${service.url}/data`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"after":"users Job"}' });
      assert.equal(posted.status, 201);
    } finally {
      await service.stop();
    }
  });

  it('refuses to drop anything when the current user does not exist (the users Job has not run here)', async () => {
    const started = Date.now();
    const result = await retire({ username: 'app-ffffffffff', password: 'Never-Pa55' }, 0);
    assert.equal(result.code, 1, result.output);
    assert.ok(Date.now() - started < 15_000, 'at once: retrying cannot help');
    assert.match(result.lines.at(-1)!.msg + JSON.stringify(result.lines.at(-1)), /app-ffffffffff does not exist; not dropping any user/);
    assert.deepEqual(await usersInDb(), ['app-1111111111', NEW.username, 'reporting'].sort());
  });
  it('the backup user: made beside the application user with read (not readWrite), and retired like it after a rotation', async () => {
    const backupEnv = (backup: { username: string; password: string }) => ({ MONGODB_BACKUP_USER: backup.username, MONGODB_BACKUP_PASSWORD: backup.password });
    const firstBackup = { username: 'backup-0123456789', password: 'Backup-Pa55-first' };
    const made = await job('ensure-user-main.ts', NEW, backupEnv(firstBackup));
    assert.equal(made.code, 0, made.output);
    const roles = (line: { msg: string }) => (line as { roles?: unknown }).roles;
    assert.deepEqual(made.lines.map((line) => [line.msg, roles(line)]), [
      ['application user updated', [{ role: 'readWrite', db: DB }]],
      ['backup user created', [{ role: 'read', db: DB }]],
    ]);
    assert.equal(await login(firstBackup.username, firstBackup.password), 'ok', 'the backup CronJob logs in as its own user');

    // A rotation of the application password: a new application user and a new backup user.
    const app2 = { username: 'app-2222222222', password: 'App2-Pa55-admin-jobs' };
    const backup2 = { username: 'backup-2222222222', password: 'Backup-Pa55-second' };
    const rotated = await job('ensure-user-main.ts', app2, backupEnv(backup2));
    assert.equal(rotated.code, 0, rotated.output);
    assert.deepEqual(rotated.lines.map((line) => line.msg), ['application user created', 'backup user created']);
    assert.equal(await login(firstBackup.username, firstBackup.password), 'ok', 'a backup running through the rotation keeps its user');

    const retireBoth = (backup: typeof backup2) => job('retire-users-main.ts', app2, { ...backupEnv(backup), MONGODB_USER_PREFIX: 'app', MONGODB_BACKUP_USER_PREFIX: 'backup', DRAIN_SECONDS: '0' });
    const refused = await retireBoth({ username: 'backup-ffffffffff', password: 'Never-Pa55' });
    assert.equal(refused.code, 1, refused.output);
    assert.match(JSON.stringify(refused.lines.at(-1)), /backup-ffffffffff does not exist; not dropping any user/, 'never leaves the backups without their user');

    const retired = await retireBoth(backup2);
    assert.equal(retired.code, 0, retired.output);
    assert.deepEqual([...retired.lines.at(-1)!.users!].sort(), ['app-1111111111', NEW.username, firstBackup.username].sort());
    assert.notEqual(await login(firstBackup.username, firstBackup.password), 'ok', 'the old backup user is gone');
    assert.equal(await login(backup2.username, backup2.password), 'ok');
    assert.deepEqual(await usersInDb(), [app2.username, backup2.username, 'reporting'].sort());
    for (const line of [...made.output.split('\n'), ...rotated.output.split('\n'), ...retired.output.split('\n')]) assert.doesNotMatch(line, /Pa55/, 'no password in the Jobs\' output');
  });
});
