/**
 * The scheduled backups (components/backups.ts) under Pulumi's mocks: the CronJob's spec, its pods
 * admitted by MongoDB's NetworkPolicy, no CronJob for an empty schedule, the admin image built from
 * admin/ with a tag of its own, and the config keys' checks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { contextHash } from '../../components/buildContext';
import { READER_IMAGE_ANNOTATION } from '../../components/backups';
import { cronProblem, loadConfig, StackConfigError } from '../../components/config';
import { appUserName, backupPassword } from '../../components/mongodb';
import { matches, one, ofType, optionsOf, plain, setConfig, DEV_SECRETS, SECRET_SIG } from './harness';
import { MACHINE, ROOT, devStackConfig, runStack } from './fixtures';

const cronJobOf = (resources: Awaited<ReturnType<typeof runStack>>['resources']) => plain(one(resources, 'kubernetes:batch/v1:CronJob', 'mongodb-backups').inputs);

describe('scheduled backups (Backups)', () => {
  let run: Awaited<ReturnType<typeof runStack>>;
  before(async () => {
    run = await runStack();
  });

  it('a CronJob on the default schedule (hourly at minute 17, UTC), never two runs at once, its last failures kept in view', () => {
    const cron = cronJobOf(run.resources);
    assert.equal(cron.metadata.name, 'mongodb-backups');
    assert.equal(cron.metadata.namespace, 'koa-mongodb');
    assert.equal(cron.spec.schedule, '17 * * * *');
    assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
    assert.ok(cron.spec.failedJobsHistoryLimit >= 1, 'failed Jobs stay listed');
    assert.ok(cron.spec.successfulJobsHistoryLimit >= 1);
    assert.ok(cron.spec.startingDeadlineSeconds > 0 && cron.spec.startingDeadlineSeconds < 3600, 'a missed run starts late, not an hour\'s worth');
    const job = cron.spec.jobTemplate.spec;
    assert.ok(job.activeDeadlineSeconds > 0, 'a stuck run ends');
    assert.equal(job.template.spec.restartPolicy, 'Never');
  });

  it('runs the admin image\'s backup program as uid 1000, read-only root, with requests and limits, onto its own claim', () => {
    const pod = cronJobOf(run.resources).spec.jobTemplate.spec.template.spec;
    const [container] = pod.containers;
    const admin = `data-admin:${contextHash(path.join(ROOT, 'admin'))}`;
    assert.equal(container.image, admin);
    assert.equal(container.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(container.command, ['node', 'dist/backup-job.js']);
    assert.ok(existsInAdmin('src/backup-job.ts'), 'the program the command names');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 1000);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    assert.ok(container.resources.limits.cpu && container.resources.limits.memory);
    const mount = container.volumeMounts[0];
    assert.equal(mount.mountPath, '/backups');
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    const claim = plain(one(run.resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-backups').inputs);
    assert.equal(volume.persistentVolumeClaim.claimName, claim.metadata.name);
    assert.notEqual(claim.metadata.name, plain(one(run.resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-data').inputs).metadata.name, 'a claim of its own');
    assert.equal(claim.spec.resources.requests.storage, '1Gi');
    assert.equal(claim.metadata.annotations[READER_IMAGE_ANNOTATION], admin, 'the claim names the image that reads it (for --list and --from)');
  });

  it('logs in as its own backup user (read only) from the Secret, not as the application user: no password in plain env or on a command line', () => {
    const [container] = cronJobOf(run.resources).spec.jobTemplate.spec.template.spec.containers;
    const env = Object.fromEntries(container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(env.MONGODB_URI, 'mongodb://mongodb.koa-mongodb.svc.cluster.local:27017/');
    assert.equal(env.MONGODB_DB, 'flask_db');
    assert.deepEqual(env.MONGODB_USER, { secretKeyRef: { name: 'mongodb-credentials', key: 'backup-username' } });
    assert.deepEqual(env.MONGODB_PASSWORD, { secretKeyRef: { name: 'mongodb-credentials', key: 'backup-password' } });
    assert.equal(env.BACKUP_KEEP, '24');
    assert.equal(env.BACKUP_DIR, '/backups');
    const text = JSON.stringify(container);
    for (const secret of [...Object.values(DEV_SECRETS), backupPassword(DEV_SECRETS.mongoAppPassword)]) assert.ok(!text.includes(secret), 'no password anywhere in the container');
  });

  it('the backup user\'s credentials: in MongoDB\'s Secret as secrets, derived from the application password, rotated with it', async () => {
    const credentialsOf = async (appPassword: string) => {
      const secret = one((await runStack({}, { ...DEV_SECRETS, mongoAppPassword: appPassword })).resources, 'kubernetes:core/v1:Secret', 'mongodb-credentials');
      // The engine sends the Secret's stringData as one secret value (encrypted in the state).
      assert.ok(SECRET_SIG in (secret.inputs.stringData as object), 'the Secret\'s data is a Pulumi secret');
      const data = plain(secret.inputs.stringData);
      return { username: data['backup-username'] as string, password: data['backup-password'] as string };
    };
    const first = await credentialsOf('first-Pa55');
    assert.match(first.password, /^[0-9a-f]{64}$/, 'an HMAC-SHA256, hex');
    assert.equal(first.password, backupPassword('first-Pa55'));
    assert.ok(!first.password.includes('first-Pa55'));
    assert.equal(first.username, appUserName('backup', 'flask_db', first.password));
    assert.match(first.username, /^backup-[0-9a-f]{10}$/);
    assert.deepEqual(await credentialsOf('first-Pa55'), first, 'the same application password, the same backup user');
    const rotated = await credentialsOf('rotated-Pa55');
    assert.notEqual(rotated.password, first.password, 'a rotation of the application password rotates the backup password');
    assert.notEqual(rotated.username, first.username, 'and makes a new backup user, as it makes a new application user');
  });

  it('the users Jobs keep the backup user beside the application user; the retire Job knows its prefix', () => {
    const envOf = (name: string) => {
      const [container] = plain(one(run.resources, 'kubernetes:batch/v1:Job', name).inputs).spec.template.spec.containers;
      return Object.fromEntries(container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    };
    for (const job of ['mongodb-users', 'mongodb-retire-users']) {
      assert.deepEqual(envOf(job).MONGODB_BACKUP_USER, { secretKeyRef: { name: 'mongodb-credentials', key: 'backup-username' } });
      assert.deepEqual(envOf(job).MONGODB_BACKUP_PASSWORD, { secretKeyRef: { name: 'mongodb-credentials', key: 'backup-password' } });
    }
    assert.equal(envOf('mongodb-retire-users').MONGODB_BACKUP_USER_PREFIX, 'backup');
  });

  it('its pods wear the label MongoDB\'s NetworkPolicy admits (handed out by MongoDb), and the CronJob\'s own labels', () => {
    const cron = cronJobOf(run.resources);
    const podLabels = cron.spec.jobTemplate.spec.template.metadata.labels;
    const policy = plain(one(run.resources, 'kubernetes:networking.k8s.io/v1:NetworkPolicy').inputs);
    const admittedBy = policy.spec.ingress[0].from.filter((peer: { podSelector: { matchLabels: Record<string, string> } }) => matches(peer.podSelector.matchLabels, podLabels));
    assert.equal(admittedBy.length, 1, 'admitted by exactly one peer of the policy');
    assert.equal(podLabels['app.kubernetes.io/name'], 'mongodb-backups');
    assert.equal(podLabels['app.kubernetes.io/component'], 'backup');
  });

  it('schedule "" (and keep, storage size) from config: no CronJob, the claim and its backups stay', async () => {
    const none = await runStack({ backupSchedule: '' });
    assert.equal(ofType(none.resources, 'kubernetes:batch/v1:CronJob').length, 0);
    one(none.resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-backups');
    const custom = await runStack({ backupSchedule: '*/15 2-5 * * mon-fri', backupKeep: '3', backupStorageSize: '5Gi' });
    const cron = cronJobOf(custom.resources);
    assert.equal(cron.spec.schedule, '*/15 2-5 * * mon-fri');
    assert.equal(cron.spec.jobTemplate.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'BACKUP_KEEP').value, '3');
    assert.equal(plain(one(custom.resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-backups').inputs).spec.resources.requests.storage, '5Gi');
    assert.notEqual(optionsOf(one(custom.resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-backups')).retainOnDelete, true);
  });

  it('the admin image is built from admin/ like the service\'s from service/, each tagged by its own content only', () => {
    const images = ofType(run.resources, 'pulumi-nodejs:dynamic:Resource').map((r) => plain(r.inputs));
    const admin = images.find((image) => image.contextDir === path.join(ROOT, 'admin'));
    const service = images.find((image) => image.contextDir === path.join(ROOT, 'service'));
    assert.equal(admin?.imageName, `data-admin:${contextHash(path.join(ROOT, 'admin'))}`);
    assert.equal(service?.imageName, `data-service:${contextHash(path.join(ROOT, 'service'))}`);
    // The hash reads only its own directory: a change to service/ cannot move the admin tag (and back).
    assert.notEqual(contextHash(path.join(ROOT, 'admin')), contextHash(path.join(ROOT, 'service')));
  });

  it('admin/ pins the mongodb driver as service/ does (and the tools that import its code run the same version)', () => {
    const version = (file: string, field: 'dependencies' | 'devDependencies') => (JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as Record<string, Record<string, string>>)[field].mongodb;
    assert.match(version('admin/package.json', 'dependencies'), /^\d+\.\d+\.\d+$/, 'an exact version');
    assert.equal(version('admin/package.json', 'dependencies'), version('service/package.json', 'dependencies'));
    assert.equal(version('admin/package.json', 'dependencies'), version('package.json', 'devDependencies'));
    const locked = (file: string) => (JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as { packages: Record<string, { version: string }> }).packages['node_modules/mongodb'].version;
    assert.equal(locked('admin/package-lock.json'), locked('service/package-lock.json'));
  });

  it('admin/.dockerignore lets through what its Dockerfile copies, on the service\'s pinned node base', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'admin', 'Dockerfile'), 'utf8');
    const ignore = readFileSync(path.join(ROOT, 'admin', '.dockerignore'), 'utf8');
    for (const copied of ['package.json', 'package-lock.json', 'tsconfig.json', 'src']) {
      assert.match(dockerfile, new RegExp(`COPY [^\\n]*\\b${copied.replace('.', '\\.')}\\b`), `the Dockerfile copies ${copied}`);
      assert.match(ignore, new RegExp(`^!${copied.replace('.', '\\.')}/?$`, 'm'), `.dockerignore lets ${copied} through`);
    }
    const base = (text: string) => /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1];
    assert.equal(base(dockerfile), base(readFileSync(path.join(ROOT, 'service', 'Dockerfile'), 'utf8')));
    assert.match(dockerfile, /^USER 1000:1000$/m);
  });
});

describe('backup config keys', () => {
  const problemsOf = (overrides: Record<string, string>): string[] => {
    setConfig({ ...devStackConfig(), ...MACHINE, ...DEV_SECRETS, ...overrides }, Object.keys(DEV_SECRETS));
    try {
      loadConfig();
      return [];
    } catch (error) {
      assert.ok(error instanceof StackConfigError, String(error));
      return error.problems;
    }
  };

  it('takes cron expressions Kubernetes takes, and "" for none', () => {
    for (const good of ['17 * * * *', '0 3 * * *', '*/15 2-5 * * mon-fri', '0 0 1,15 * ?', '30 4 * jan-mar 0', '@daily', '@hourly', '0 0 * * 7']) {
      assert.equal(cronProblem(good), undefined, good);
    }
    assert.deepEqual(problemsOf({ backupSchedule: '' }), []);
  });

  it('refuses a bad cron expression before anything changes, naming the field', () => {
    const cases: Array<[string, RegExp]> = [
      ['17 * * *', /has 4 fields/],
      ['60 * * * *', /minute field "60"/],
      ['0 24 * * *', /hour field "24"/],
      ['0 0 32 * *', /day of month field "32"/],
      ['0 0 * 13 *', /month field "13"/],
      ['0 0 * * 8', /day of week field "8"/],
      ['5-1 * * * *', /minute field "5-1"/],
      ['*/0 * * * *', /minute field/],
      ['? * * * *', /minute field "\?"/],
      ['every hour', /has 2 fields/],
      ['@often', /has 1 field/],
    ];
    for (const [schedule, why] of cases) {
      const problems = problemsOf({ backupSchedule: schedule });
      assert.equal(problems.length, 1, `${schedule}: ${problems.join('; ')}`);
      assert.match(problems[0], /^backupSchedule ".*" /);
      assert.match(problems[0], why, schedule);
    }
  });

  it('refuses a keep that is not a whole number from 1, and a bad size; adminImage only in prebuilt mode, pinned', () => {
    for (const keep of ['0', '-1', '2.5', 'all']) assert.match(problemsOf({ backupKeep: keep }).join(), /backupKeep must be a whole number from 1 to 1000/, keep);
    assert.match(problemsOf({ backupStorageSize: 'lots' }).join(), /backupStorageSize "lots" is not a Kubernetes memory quantity/);
    assert.match(problemsOf({ adminImage: 'x:1' }).join(), /adminImage is for imageMode prebuilt only/);
    assert.match(problemsOf({ imageMode: 'prebuilt', image: 'x:1', adminImage: 'x:latest' }).join(), /adminImage "x:latest" must name an exact tag/);
    assert.match(problemsOf({ imageMode: 'prebuilt', image: 'x:1' }).join(), /imageMode prebuilt needs `adminImage` too/);
  });
});

function existsInAdmin(file: string): boolean {
  try {
    readFileSync(path.join(ROOT, 'admin', file));
    return true;
  } catch {
    return false;
  }
}
