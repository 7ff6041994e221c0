import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

// The admin image runs the compiled file; the tests run its source through tsx, as the backup Job's tests do.
const JOB_MAIN = path.resolve(__dirname, '..', '..', 'admin', 'src', 'users', 'ensure-user-main.ts');
const TSX = require.resolve('tsx/cjs');

/** The `mongodb-users` Job's process: what it does without a usable database, and what it never prints. */
describe('MongoDB users Job: the entry point', () => {
  describe('the Job\'s entry point', () => {
    const runJob = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['--require', TSX, JOB_MAIN], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', ...env } });

    it('refuses to start without its environment, naming what is missing', () => {
      const result = runJob({ MONGODB_URI: 'mongodb://127.0.0.1:1/', MONGODB_PASSWORD: 'App-Pa55' });
      assert.equal(result.status, 1);
      assert.match(result.stdout, /missing environment: MONGODB_ADMIN_USER, MONGODB_ADMIN_PASSWORD, MONGODB_USER, MONGODB_DB/);
      assert.doesNotMatch(result.stdout + result.stderr, /App-Pa55/);
    });

    it('retries an absent database until its deadline, then fails without printing a credential', () => {
      const result = runJob({
        MONGODB_URI: 'mongodb://127.0.0.1:1/',
        MONGODB_ADMIN_USER: 'root',
        MONGODB_ADMIN_PASSWORD: 'R00t-Pa55',
        MONGODB_USER: 'app',
        MONGODB_PASSWORD: 'App-Pa55',
        MONGODB_DB: 'flask_db',
        ENSURE_USER_TIMEOUT_MS: '15000',
      });
      assert.equal(result.status, 1, result.stdout + result.stderr);
      const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; attempt?: number });
      assert.ok(lines.some((line) => line.msg === 'database not usable yet; retrying'), 'it retried');
      assert.equal(lines.at(-1)!.msg, 'could not reconcile the application user');
      assert.doesNotMatch(result.stdout + result.stderr, /Pa55/);
    });
  });
});
