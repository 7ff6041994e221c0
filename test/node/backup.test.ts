/**
 * Scheduled backups on the real node, as a user has them: `npm run up -- --yes` with the minikube STAND-IN
 * (as test/node/main-job.test.ts runs it; MongoDB's STAND-IN, FerretDB posing as the mongo image), then
 * the backup CronJob's first run started as a user starts one (`kubectl create job --from=cronjob/…`),
 * `npm run backup -- --list`, `pulumi destroy` with the database's volume lost, `npm run up` (a new, empty
 * database), and `npm run restore -- --from <name>`, after which the service serves every document again.
 *
 * The stack keeps its volumes on destroy (retainOnDelete): backups live on a claim in the stack's namespace,
 * and without retainOnDelete `pulumi destroy` deletes them with it (docs/backup.md). The disaster played here
 * is the one backups are for: MongoDB's own volume is gone (deleted by hand after the destroy).
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { KubeClient, type Manifest } from '../../devkit/kube';
import type { MinikubeStandIn } from '../../devkit/minikube-standin';
import { eventually } from '../../devkit/wait';
import { withKubectl } from './readme-commands';
import { userWithMinikube, type UserProject } from './user-project';

const NAMESPACE = 'koa-mongodb';
const log = (line: string) => console.log(`      ${line}`);
const isReady = (pod: Manifest) => pod.status?.phase === 'Running' && pod.status?.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True');

/** Documents of the kinds a JSON client stores: strings (unicode too), integers, doubles, booleans, null, nested objects, arrays. */
function documents(count: number): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({
    i,
    name: `document ${i} · ünïcödé ✓`,
    ratio: i / 7,
    big: 2 ** 40 + i,
    even: i % 2 === 0,
    none: null,
    nested: { level: { deeper: [i, `${i}`, { k: i % 3 }] } },
    tags: ['a', 'b', 'c'].slice(0, i % 4),
  }));
}

describe('scheduled backups on the real node: the CronJob\'s first run, --list, destroy and up, restore --from', function () {
  this.timeout(60 * 60_000);
  let mk: MinikubeStandIn;
  let user: UserProject;
  let env: NodeJS.ProcessEnv;
  let api: KubeClient;
  let url: string;
  let backup: string;
  /** What the backup holds in all (the service's collection and any records of its own). */
  let total: { collections: number; documents: number };
  const seeded = documents(1200);
  const figures: string[] = [];

  before(async () => {
    ({ mk, user } = await userWithMinikube(log));
    // Set before the first `npm run up`, as a user who wants the data kept through a destroy sets it.
    appendFileSync(path.join(user.dir, 'Pulumi.dev.yaml'), '  koa-mongodb:retainOnDelete: "true"\n');
    env = withKubectl(user.env, log);
  });

  after(async () => {
    for (const line of figures) log(line);
    if (user && mk?.node()) {
      await user.pulumi(['destroy', '--yes', '--skip-preview']).catch((error: Error) => log(`clean-up destroy: ${error.message.split('\n')[0]}`));
      // retainOnDelete kept the namespace (and the claims in it).
      await api?.request('DELETE', `/api/v1/namespaces/${NAMESPACE}`).catch(() => undefined);
    }
    await mk?.stop();
  });

  const run = (command: string, args: string[], timeoutMs = 10 * 60_000) => user.run(command, args, env, undefined, timeoutMs);
  const kubectl = (...args: string[]) => run('kubectl', ['--context', 'minikube', '-n', NAMESPACE, ...args], 120_000);
  const pods = async (prefix: string) => (await api.list('v1', 'Pod', NAMESPACE)).filter((pod) => pod.metadata.name.startsWith(prefix));
  const getData = async () => {
    const res = await fetch(`${url}/data`, { signal: AbortSignal.timeout(30_000) });
    assert.equal(res.status, 200);
    return ((await res.json()) as Array<Record<string, unknown>>).sort((a, b) => Number(a.i) - Number(b.i));
  };
  const answers = () =>
    eventually('the service to answer', async () => (await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.status === 200, { timeoutMs: 120_000, everyMs: 500 });

  it('npm run up builds two images in the node (the service\'s and the admin tasks\') and declares the backup CronJob', async () => {
    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    api = KubeClient.fromKubeconfig(mk.kubeconfig);
    figures.push(`first npm run up: ${up.seconds.toFixed(1)} s; builds: ${mk.builds.map((b) => `${b.reference} ${b.seconds.toFixed(1)} s`).join(', ')}`);
    assert.deepEqual(mk.builds.map((b) => b.ok), [true, true], 'two builds, both in the node');
    assert.deepEqual(mk.builds.map((b) => b.reference.replace(/^docker\.io\/library\//, '').split(':')[0]).sort(), ['data-admin', 'data-service']);
    const cron = await api.get('batch/v1', 'CronJob', NAMESPACE, 'mongodb-backups');
    assert.equal(cron?.spec.schedule, '17 * * * *');
    assert.equal(cron?.spec.concurrencyPolicy, 'Forbid');
    assert.match(cron?.spec.jobTemplate.spec.template.spec.containers[0].image, /^data-admin:[0-9a-f]{16}$/);
    url = (await user.pulumi(['stack', 'output', 'url'])).trim();
    await answers();
  });

  it('the service stores the documents a user posts', async () => {
    for (let start = 0; start < seeded.length; start += 200) {
      const res = await fetch(`${url}/data`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(seeded.slice(start, start + 200)), signal: AbortSignal.timeout(30_000) });
      assert.equal(res.status, 201, await res.text());
    }
    assert.deepEqual(await getData(), seeded);
  });

  it('the CronJob\'s first run (kubectl create job --from=cronjob/mongodb-backups) writes a backup to its volume, admitted through the NetworkPolicy', async () => {
    const started = Date.now();
    const created = await kubectl('create', 'job', '--from=cronjob/mongodb-backups', 'backup-now');
    assert.equal(created.code, 0, created.output);
    const job = await eventually('the backup Job to finish', async () => {
      const found = await api.get('batch/v1', 'Job', NAMESPACE, 'backup-now');
      return found?.status?.succeeded === 1 || found?.status?.failed ? found : undefined;
    }, { timeoutMs: 300_000, everyMs: 1000 });
    const seconds = (Date.now() - started) / 1000;
    const logs = await kubectl('logs', 'job/backup-now');
    assert.equal(job.status.succeeded, 1, `the Job failed:\n${logs.output}`);
    const written = logs.output.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'backup written');
    assert.ok(written, logs.output);
    // The service's collection whole; the database may hold the service's own records beside it (idempotency keys).
    const collections = written.collections as Array<{ name: string; documents: number }>;
    assert.equal(collections.find((c) => c.name === 'data')?.documents, seeded.length, `every document in the backup: ${JSON.stringify(collections)}`);
    total = { collections: collections.length, documents: Number(written.documents) };
    assert.match(String(written.file), /^backup-\d{8}T\d{6}Z\.jsonl\.gz$/);
    backup = String(written.file);
    figures.push(`backup Job: ${seconds.toFixed(1)} s from kubectl create job to Complete; the program itself ${written.seconds} s for ${written.documents} documents, ${written.bytes} bytes of Extended JSON, ${written.fileBytes} bytes written`);
    const [pod] = await pods('backup-now-');
    assert.equal(pod.spec.securityContext.runAsUser, 1000);
    assert.equal(pod.spec.containers[0].securityContext.readOnlyRootFilesystem, true);
    assert.equal(pod.metadata.labels['koa-mongodb/mongodb-client'], 'mongodb', 'the label the NetworkPolicy admits');
    // It logged in as the backup user (read only), not as the application user.
    const userRef = pod.spec.containers[0].env.find((e: Manifest) => e.name === 'MONGODB_USER')?.valueFrom?.secretKeyRef;
    assert.deepEqual(userRef, { name: 'mongodb-credentials', key: 'backup-username' });
    const secret = await api.get('v1', 'Secret', NAMESPACE, 'mongodb-credentials');
    const backupUser = Buffer.from(secret?.data['backup-username'], 'base64').toString();
    assert.match(backupUser, /^backup-[0-9a-f]{10}$/);
    assert.equal(written.user, backupUser, 'the Job\'s log line names the user it read as');
    const usersLog = await kubectl('logs', 'job/mongodb-users');
    assert.match(usersLog.output, new RegExp(`"msg":"backup user (created|updated)","user":"${backupUser}"[^\\n]*"roles":\\[\\{"role":"read","db":"flask_db"\\}\\]`), usersLog.output);
  });

  it('npm run backup -- --list shows it on the backups volume', async () => {
    const listed = await run('npm', ['run', '-s', 'backup', '--', '--list']);
    for (const line of listed.output.trim().split('\n')) log(`| ${line}`);
    assert.equal(listed.code, 0, listed.output);
    assert.match(listed.output, /1 backup on claim mongodb-backups in namespace koa-mongodb \(context minikube\)/);
    assert.match(listed.output, new RegExp(`^  ${backup.replace(/\./g, '\\.')}  +\\d+ bytes  written `, 'm'));
    figures.push(`npm run backup -- --list: ${listed.seconds.toFixed(1)} s (the reader pod started and deleted)`);
    await eventually('the reader pod to go', async () => (await pods('mongodb-backups-reader-')).length === 0, { timeoutMs: 60_000 });
  });

  it('pulumi destroy, MongoDB\'s volume lost, npm run up: a new, empty database; the backups volume is still there', async () => {
    await user.pulumi(['destroy', '--yes', '--skip-preview']);
    await eventually('the stack\'s pods gone', async () => (await api.list('v1', 'Pod', NAMESPACE)).length === 0, { timeoutMs: 180_000 });
    const deleted = await api.request('DELETE', `/api/v1/namespaces/${NAMESPACE}/persistentvolumeclaims/mongodb-data`);
    assert.ok([200, 202].includes(deleted.status), `deleting MongoDB's claim: ${deleted.status}`);
    await eventually('MongoDB\'s claim gone', async () => (await api.get('v1', 'PersistentVolumeClaim', NAMESPACE, 'mongodb-data')) === undefined, { timeoutMs: 120_000 });
    assert.ok(await api.get('v1', 'PersistentVolumeClaim', NAMESPACE, 'mongodb-backups'), 'the backups claim was kept');

    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    figures.push(`npm run up after the destroy: ${up.seconds.toFixed(1)} s`);
    url = (await user.pulumi(['stack', 'output', 'url'])).trim();
    await answers();
    assert.deepEqual(await getData(), [], 'a new, empty database');
    const [mongo] = await pods('mongodb-0');
    assert.ok(isReady(mongo));
  });

  it('npm run restore -- --from <name> brings back every document, checked, and the service serves them', async () => {
    const restored = await run('npm', ['run', '-s', 'restore', '--', '--from', backup]);
    for (const line of restored.output.trim().split('\n')) log(`| ${line}`);
    assert.equal(restored.code, 0, restored.output);
    assert.match(restored.output, new RegExp(`copied ${backup.replace(/\./g, '\\.')} \\(\\d+ bytes`));
    assert.match(restored.output, new RegExp(`data: ${seeded.length} documents, .*count ${seeded.length} = backup, checksum [0-9a-f]{16}… = backup`));
    assert.match(restored.output, new RegExp(`restore: done: ${total.collections} collections?, ${total.documents} documents`));
    figures.push(`npm run restore -- --from: ${restored.seconds.toFixed(1)} s for ${seeded.length} documents (the reader pod, the copy, the check, the load through a port-forward)`);
    const served = await getData();
    assert.equal(served.length, seeded.length);
    assert.deepEqual(served, seeded, 'every document, as posted');
    await eventually('the reader pod to go', async () => (await pods('mongodb-backups-reader-')).length === 0, { timeoutMs: 60_000 });
  });

  it('a name that is not on the volume: exit 3, one line naming the ones there are, nothing written', async () => {
    const missing = await run('npm', ['run', '-s', 'restore', '--', '--from', 'backup-20000101T000000Z.jsonl.gz', '--drop']);
    assert.equal(missing.code, 3, missing.output);
    assert.match(missing.output, new RegExp(`restore: refused: there is no backup backup-20000101T000000Z\\.jsonl\\.gz on claim mongodb-backups .*there are: ${backup.replace(/\./g, '\\.')}`));
    assert.equal((await getData()).length, seeded.length);
  });

  it('a failed backup (MongoDB down when it runs) shows in kubectl get jobs and npm run diagnose, with its log line', async () => {
    const scale = (replicas: number) => api.request('PATCH', `/apis/apps/v1/namespaces/${NAMESPACE}/statefulsets/mongodb/scale`, { spec: { replicas } }, 'application/merge-patch+json');
    assert.equal((await scale(0)).status, 200);
    try {
      await eventually('mongodb-0 gone', async () => (await pods('mongodb-0')).length === 0, { timeoutMs: 120_000 });
      const created = await kubectl('create', 'job', '--from=cronjob/mongodb-backups', 'backup-down');
      assert.equal(created.code, 0, created.output);
      const started = Date.now();
      await eventually('the backup Job to fail', async () => {
        const job = await api.get('batch/v1', 'Job', NAMESPACE, 'backup-down');
        return job?.status?.conditions?.some((c: Manifest) => c.type === 'Failed' && c.status === 'True');
      }, { timeoutMs: 300_000, everyMs: 2000 });
      figures.push(`a backup with MongoDB down: the Job failed ${((Date.now() - started) / 1000).toFixed(0)} s after it was created (two attempts of 30 s server selection)`);
      const jobs = await kubectl('get', 'jobs');
      log(`$ kubectl get jobs\n${jobs.output.trim().split('\n').map((line) => `      | ${line}`).join('\n')}`);
      assert.match(jobs.output, /^backup-down\s+Failed\s+0\/1/m, 'the failed Job, as kubectl lists it');
      const diagnosis = await run('npm', ['run', '-s', 'diagnose']);
      for (const line of diagnosis.output.trim().split('\n').filter((l) => /cronjob|job |backup|pod backup-down/.test(l))) log(`| ${line}`);
      assert.match(diagnosis.output, /cronjob mongodb-backups: schedule "17 \* \* \* \*"; last scheduled .*; last run: backup-down FAILED/);
      assert.match(diagnosis.output, /job backup-down failed .*BackoffLimitExceeded/);
      assert.match(diagnosis.output, /pod backup-down-\w+ \(Failed/, 'its pods among the failed ones');
      assert.match(diagnosis.output, /"msg":"backup failed"/, 'with the program\'s own log line');
    } finally {
      await scale(1);
    }
    await eventually('mongodb-0 Ready again', async () => (await pods('mongodb-0')).some(isReady), { timeoutMs: 180_000 });
  });
});
