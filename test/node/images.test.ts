/**
 * The images made here (devkit/images), run for real in the namespaced builder's dockerd: the
 * MongoDB stand-in with the stack's own init script and probe command, and the service image,
 * built from service/Dockerfile on the Debian base, as uid 1000 against the stand-in with
 * authentication on. Each image is loaded back from the archive the node would import, so the
 * archives themselves are what is tested. Ends by stopping the builder and checking it left
 * nothing behind (processes, cgroups, its run directory).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { eventually } from '../../devkit/wait';
import { startDockerd, type Dockerd } from '../../devkit/images/dockerd';
import { buildAdminImage, buildServiceImage, ensureBaseImage, ensureMongoStandIn, type ImageArtifact } from '../../devkit/images/index';

const log = (line: string) => console.log(`      ${line}`);
const ROOT_PASSWORD = `root-${randomBytes(8).toString('hex')}`;
const APP_PASSWORD = `app-${randomBytes(8).toString('hex')}`;
/** The readiness/liveness/startup probe of components/mongodb.ts, word for word. */
const PROBE = ['mongosh', '--quiet', '--norc', '--eval', 'quit(db.adminCommand({ ping: 1 }).ok === 1 ? 0 : 1)'];

describe('images made here (base, service, MongoDB stand-in)', function () {
  this.timeout(30 * 60_000); // a first run on a machine runs debootstrap and builds FerretDB
  let daemon: Dockerd;
  let base: ImageArtifact;
  let service: ImageArtifact;
  let admin: ImageArtifact;
  let mongo: ImageArtifact;
  let initDir: string;
  const suffix = randomBytes(3).toString('hex');
  const mongoName = `mongo-${suffix}`;
  const serviceName = `service-${suffix}`;
  let stopped = false;

  const docker = (...args: string[]) => daemon.docker(args).then((r) => r.stdout.trim());
  const status = (...args: string[]) => daemon.docker(args).then(() => 0, (e: Error) => /exit (\d+)/.exec(e.message)?.[1] ?? 'error');

  before(async () => {
    daemon = await startDockerd(log);
    base = await ensureBaseImage({ daemon, log });
    service = await buildServiceImage(undefined, { daemon, log });
    admin = await buildAdminImage({ daemon, log });
    mongo = await ensureMongoStandIn({ daemon, log });
    // What the node gets is the archive: drop the images from the daemon and load them back from it.
    for (const image of [service, admin, mongo]) {
      await status('rmi', '--force', image.ref);
      await docker('load', '--input', image.archive);
    }
    // The official image's init directory, empty as the stack leaves it (the users Job makes the app user).
    initDir = mkdtempSync(path.join(os.tmpdir(), 'koa-images-init-'));
    chmodSync(initDir, 0o755);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || stopped) return;
    for (const name of [mongoName, serviceName]) {
      const logs = await daemon.docker(['logs', '--tail', '40', name]).then((r) => `${r.stdout}${r.stderr}`, (e: Error) => e.message);
      console.log(`      --- ${name} ---\n${logs}`);
    }
  });

  after(async () => {
    if (!stopped && daemon) {
      await status('rm', '--force', serviceName, mongoName);
      await daemon.stop();
    }
    if (initDir) rmSync(initDir, { recursive: true, force: true });
  });

  it('names each image for what it is, and the base has Debian nodejs >= 20.19 and npm', async () => {
    assert.match(base.ref, /^local\/node-base:node20-trixie-[0-9a-f]{12}$/);
    assert.match(service.ref, /^local\/data-service:[0-9a-f]+$/);
    assert.match(mongo.ref, /^local\/mongo-standin:ferretdb-1\.24\.2-[0-9a-f]{12}$/);
    const versions = await docker('run', '--rm', '--network', 'none', base.ref, 'sh', '-c', 'node --version && npm --version && dpkg-query -W -f=\'${Version}\' nodejs');
    const [node, npm, deb] = versions.split('\n');
    const [major, minor] = node.replace(/^v/, '').split('.').map(Number);
    assert.ok(major === 20 ? minor >= 19 : major > 20, `node ${node}`);
    assert.match(npm, /^\d+\.\d+\.\d+$/);
    assert.match(deb, /\+dfsg/, 'nodejs is Debian’s package');
  });

  it('the stand-in runs as uid 999 and creates root; the users Job (the admin image) creates the app user, and brings a rotated password in line', async () => {
    await docker(
      'run', '--detach', '--name', mongoName, '--network', 'host',
      '--env', 'MONGO_INITDB_ROOT_USERNAME=root', '--env', `MONGO_INITDB_ROOT_PASSWORD=${ROOT_PASSWORD}`,
      '--volume', `${initDir}:/docker-entrypoint-initdb.d:ro`,
      mongo.ref, '--wiredTigerCacheSizeGB', '0.25',
    );
    await eventually('the stand-in to answer the probe', async () => (await status('exec', mongoName, ...PROBE)) === 0, { timeoutMs: 60_000 });
    assert.equal(await docker('exec', mongoName, 'id', '-u'), '999');
    const top = await docker('top', mongoName, '-o', 'pid,uid,args');
    assert.match(top, /999\s+\/usr\/local\/bin\/mongod --wiredTigerCacheSizeGB 0\.25/);
    const files = await docker('exec', mongoName, 'ls', '/data/db');
    assert.match(files, /admin\.sqlite/);

    // The mongodb-users Job's container, as the stack declares it: the admin image, its reconcile program.
    const usersJob = (password: string) =>
      docker(
        'run', '--rm', '--network', 'host', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
        '--env', 'MONGODB_URI=mongodb://127.0.0.1:27017/', '--env', 'MONGODB_ADMIN_USER=root', '--env', `MONGODB_ADMIN_PASSWORD=${ROOT_PASSWORD}`,
        '--env', 'MONGODB_USER=app', '--env', `MONGODB_PASSWORD=${password}`, '--env', 'MONGODB_DB=flask_db',
        admin.ref, 'node', 'dist/users/ensure-user-main.js',
      );
    const rotated = `${APP_PASSWORD}-rotated`;
    assert.match(await usersJob(rotated), /"msg":"application user created"/);
    const second = await usersJob(APP_PASSWORD);
    assert.match(second, /"msg":"application user updated"/);
    assert.doesNotMatch(second, /"level":"(warn|error)"/, 'the stand-in accepts the readWrite role the Job asks for (not enforced: docs/stand-ins.md)');
    const logs = Object.values(await daemon.docker(['logs', mongoName])).join('\n');
    assert.ok(!logs.includes(ROOT_PASSWORD) && !logs.includes(APP_PASSWORD) && !second.includes(APP_PASSWORD), 'no password in the logs');
    const forward = await daemon.forward(27017);
    try {
      const login = async (password: string) => {
        const client = new MongoClient(`mongodb://127.0.0.1:${forward.port}/?directConnection=true&serverSelectionTimeoutMS=5000`, { auth: { username: 'app', password }, authSource: 'flask_db' });
        try {
          await client.db('flask_db').collection('data').countDocuments();
          return true;
        } catch {
          return false;
        } finally {
          await client.close();
        }
      };
      assert.equal(await login(rotated), false, 'the old password no longer works');
      assert.equal(await login(APP_PASSWORD), true, 'the Secret\'s password does');
    } finally {
      await forward.close();
    }
  });

  it('the stand-in has what the stack’s other uses of the image run: chown as root with CHOWN only (static volume), mongod --version', async () => {
    const chown = ['run', '--rm', '--network', 'none', '--user', '0', '--cap-drop', 'ALL', '--cap-add', 'CHOWN', '--security-opt', 'no-new-privileges'];
    // A root-owned volume (as a fresh hostPath directory is), handed to uid 999 by the init container's command.
    const handed = await docker(...chown, '--tmpfs', '/data/db:mode=0755', '--entrypoint', 'sh', mongo.ref, '-c', 'stat -c %u /data/db && chown -R 999:999 /data/db && stat -c %u /data/db');
    assert.deepEqual(handed.split('\n'), ['0', '999']);
    assert.match(await docker('run', '--rm', '--network', 'none', mongo.ref, '--version'), /stand-in.*FerretDB v1\.24\.2.*not MongoDB/);
    // Started as root (no securityContext), it hands /data/db to 999 and drops to it, as the official entrypoint does.
    const asRoot = `${mongoName}-root`;
    await docker('run', '--detach', '--name', asRoot, '--network', 'none', '--user', '0', '--tmpfs', '/data/db:mode=0755', mongo.ref, '--port', '27018');
    try {
      await eventually('the root-started stand-in to listen', async () => (await status('exec', asRoot, 'mongosh', '--port', '27018', '--eval', 'quit(0)')) === 0, { timeoutMs: 30_000 });
      assert.match(await docker('top', asRoot, '-o', 'pid,uid,args'), /\s999\s+\/usr\/local\/bin\/mongod --port 27018/);
      assert.equal(await docker('exec', asRoot, 'stat', '-c', '%u', '/data/db'), '999');
    } finally {
      await status('rm', '--force', asRoot);
    }
    assert.notEqual(await status('run', '--rm', '--network', 'none', mongo.ref, '--no-such-flag'), 0, 'unknown mongod flags are refused, as mongod refuses them');
  });

  it('the stand-in enforces authentication: a wrong password and an anonymous read are refused', async () => {
    const forward = await daemon.forward(27017);
    try {
      const url = `mongodb://127.0.0.1:${forward.port}/?directConnection=true&serverSelectionTimeoutMS=5000`;
      const wrong = new MongoClient(url, { auth: { username: 'app', password: 'not-the-password' }, authSource: 'flask_db' });
      await assert.rejects(wrong.connect(), /Authentication failed/);
      await wrong.close();
      const anonymous = new MongoClient(url);
      await assert.rejects(anonymous.db('flask_db').collection('data').findOne({}), /requires authentication/);
      await anonymous.close();
      const app = new MongoClient(url, { auth: { username: 'app', password: APP_PASSWORD }, authSource: 'flask_db' });
      assert.equal(await app.db('flask_db').collection('data').countDocuments(), 0);
      await app.close();
    } finally {
      await forward.close();
    }
    assert.notEqual(await status('exec', mongoName, 'mongosh', '-u', 'root', '-p', 'wrong', '--authenticationDatabase', 'admin', '--eval', 'print(1)'), 0);
    assert.equal(await status('exec', mongoName, 'mongosh', '-u', 'root', '-p', ROOT_PASSWORD, '--authenticationDatabase', 'admin', '--eval', 'quit(db.getSiblingDB("flask_db").runCommand({ usersInfo: 1 }).users.length === 1 ? 0 : 3)'), 0);
  });

  it('the service image runs `node dist/main.js` as uid 1000 and round-trips POST then GET /data through the stand-in', async () => {
    assert.equal(await docker('image', 'inspect', '--format', '{{json .Config.Cmd}} {{.Config.User}}', service.ref), '["node","dist/main.js"] 1000:1000');
    await docker(
      'run', '--detach', '--name', serviceName, '--network', 'host', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--env', 'PORT=5000', '--env', 'MONGODB_URI=mongodb://127.0.0.1:27017/',
      '--env', 'MONGODB_USER=app', '--env', `MONGODB_PASSWORD=${APP_PASSWORD}`,
      service.ref,
    );
    const forward = await daemon.forward(5000);
    const url = (p: string) => `http://127.0.0.1:${forward.port}${p}`;
    try {
      const health = await eventually('/healthz', async () => (await fetch(url('/healthz'), { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.status === 200, {
        timeoutMs: 30_000,
      });
      assert.ok(health);
      await eventually('/readyz (the database reached with auth)', async () => (await fetch(url('/readyz'), { signal: AbortSignal.timeout(5000) })).status === 200, { timeoutMs: 30_000 });
      assert.match(await docker('top', serviceName, '-o', 'pid,uid,args'), /1000\s+node dist\/main\.js/);
      const posted = await fetch(url('/data'), { signal: AbortSignal.timeout(10_000), method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: `value-${suffix}` }) });
      assert.equal(posted.status, 201, await posted.clone().text());
      const got = await fetch(url('/data'), { signal: AbortSignal.timeout(10_000) });
      assert.equal(got.status, 200);
      assert.deepEqual(await got.json(), [{ key: `value-${suffix}` }]);

      // A restart keeps the data (it lives in /data/db) and does not run the init again.
      await docker('restart', mongoName);
      await eventually('/data after the stand-in restarted', async () => {
        const again = await fetch(url('/data'), { signal: AbortSignal.timeout(5000) });
        return again.status === 200 && JSON.stringify(await again.json()) === JSON.stringify([{ key: `value-${suffix}` }]);
      }, { timeoutMs: 60_000 });
      const logs = (await daemon.docker(['logs', mongoName])).stderr;
      assert.equal(logs.match(/empty data directory: initialising/g)?.length, 1, 'initialised once');
    } finally {
      await forward.close();
    }
  });

  it('stopping the builder leaves nothing behind: no dockerd, no run directory, no cgroup of ours', async () => {
    const runDir = daemon.runDir;
    await docker('rm', '--force', serviceName, mongoName);
    await daemon.stop();
    stopped = true;
    assert.ok(!existsSync(runDir), `${runDir} removed`);
    const ours = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((name) => name.startsWith(`koa-mongodb-images-${process.pid}`)) : []);
    for (const controller of readdirSync('/sys/fs/cgroup')) assert.deepEqual(ours(path.join('/sys/fs/cgroup', controller)), [], controller);
    const dockerds = readdirSync('/proc').filter((pid) => /^\d+$/.test(pid) && existsSync(`/proc/${pid}/cmdline`)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(runDir);
      } catch {
        return false;
      }
    });
    assert.deepEqual(dockerds, [], 'no process still uses the run directory');
  });
});
