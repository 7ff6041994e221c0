import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MongoClient } from 'mongodb';
import { ensureGuideVenv, startGuideApp, type GuideApp } from '../../devkit/guide-app';
import { childrenOf } from '../../devkit/proc-cpu';
import { dbUri, uniqueDbName } from './helpers';

/** The bench's "guide" column: the guide's own Flask app, built into its venv and served by gunicorn. */
describe("the guide's Flask app as npm run bench runs it", function () {
  this.timeout(300_000); // the first run builds the venv (pymongo from source)
  const dbName = uniqueDbName('guide');
  let app: GuideApp | undefined;

  before(function () {
    // Skipped (pending, never a pass) only where there is no python3 at all, and it says so.
    if (spawnSync('python3', ['--version']).status !== 0) {
      console.log("    skipped: no python3 on PATH, so the bench's guide column cannot be checked (install python3 and python3-venv)");
      this.skip();
    }
  });
  after(async () => {
    await app?.stop();
    const client = new MongoClient(dbUri());
    await client.db(dbName).dropDatabase().catch(() => undefined);
    await client.close();
  });

  it('builds its venv, starts under gunicorn on the given database, and answers as the guide has it', async () => {
    const venv = ensureGuideVenv(() => undefined);
    assert.ok('python' in venv, `python3 is here, so the venv must build: ${'missing' in venv ? venv.missing : ''}`);
    app = await startGuideApp(venv.python, dbUri(), dbName);

    const welcome = await fetch(`${app.url}/`);
    assert.equal(welcome.status, 200);
    assert.match(await welcome.text(), /^Welcome to the Flask app! The current time is: /);
    const post = await fetch(`${app.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"key":"value"}' });
    assert.equal(post.status, 201);
    assert.deepEqual(await post.json(), { status: 'Data inserted' });
    // Every document, without _id, whatever the query (the guide's app has no limit).
    const all = await fetch(`${app.url}/data?limit=1`);
    assert.equal(all.status, 200);
    assert.deepEqual(await all.json(), [{ key: 'value' }]);

    // In the bench's database, not the guide's flask_db.
    const client = new MongoClient(dbUri());
    try {
      assert.equal(await client.db(dbName).collection('data').countDocuments({ key: 'value' }), 1);
    } finally {
      await client.close();
    }
    // gunicorn's master and its one worker, whose CPU the bench sums.
    const workers = childrenOf(app.pid);
    assert.equal(workers.length, 1, `gunicorn's workers: ${workers.join(', ')}`);
    assert.ok(app.cpuUs() > 0);

    await app.stop();
    app = undefined;
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a worker checks for its master about once a second
    assert.equal(spawnSync('kill', ['-0', String(workers[0])]).status, 1, 'the worker outlived gunicorn');
  });
});
