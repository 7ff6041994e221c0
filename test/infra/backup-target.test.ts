/**
 * `npm run backup` / `npm run restore` reach the stack's MongoDB by fixed names (scripts/backup/target.ts):
 * they must be the names the program gives its Service, port and Secret.
 */
import assert from 'node:assert/strict';
import { MONGO_PORT, MONGO_SECRET, MONGO_SERVICE, SECRET_PASSWORD_KEY, SECRET_USERNAME_KEY } from '../../scripts/backup/target';
import { BACKUP_DIR, READER_IMAGE_ANNOTATION } from '../../components/backups';
import { BACKUP_CLAIM, BACKUP_CRONJOB, BACKUP_MOUNT, READER_IMAGE_ANNOTATION as TOOLS_ANNOTATION, readerPod } from '../../scripts/backup/volume';
import { one, ofType, plain } from './harness';
import { runStack } from './fixtures';

describe('backup and restore find the stack\'s MongoDB', () => {
  it('by the Service, port and Secret keys the program declares', async () => {
    const { resources } = await runStack();
    const services = ofType(resources, 'kubernetes:core/v1:Service').map((service) => plain(service.inputs));
    const mongo = services.find((service) => service.metadata.name === MONGO_SERVICE);
    assert.ok(mongo, `a Service named ${MONGO_SERVICE}`);
    assert.ok(mongo.spec.ports.some((port: { port: number }) => port.port === MONGO_PORT));
    const secrets = ofType(resources, 'kubernetes:core/v1:Secret').map((secret) => plain(secret.inputs));
    const credentials = secrets.find((secret) => secret.metadata.name === MONGO_SECRET);
    assert.ok(credentials, `a Secret named ${MONGO_SECRET}`);
    assert.ok(SECRET_USERNAME_KEY in credentials.stringData && SECRET_PASSWORD_KEY in credentials.stringData);
  });

  it('--list and --from find the backups volume, its image and its mount by the names the program gives them', async () => {
    const { resources } = await runStack();
    const claim = plain(one(resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-backups').inputs);
    assert.equal(claim.metadata.name, BACKUP_CLAIM);
    assert.equal(TOOLS_ANNOTATION, READER_IMAGE_ANNOTATION);
    assert.ok(claim.metadata.annotations[READER_IMAGE_ANNOTATION]);
    assert.equal(BACKUP_MOUNT, BACKUP_DIR);
    const cron = plain(one(resources, 'kubernetes:batch/v1:CronJob').inputs);
    assert.equal(cron.metadata.name, BACKUP_CRONJOB);
    assert.equal(cron.spec.jobTemplate.spec.template.spec.containers[0].volumeMounts[0].mountPath, BACKUP_MOUNT);
  });

  it('the reader pod mounts the claim read-only, runs non-root on a read-only root, ends itself, and wears no client label', () => {
    const pod = readerPod({ kind: 'cluster', stack: 'dev', context: 'minikube', namespace: 'koa-mongodb', database: 'flask_db' }, 'reader', 'data-admin:abc') as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const [container] = pod.spec.containers;
    assert.equal(pod.spec.volumes[0].persistentVolumeClaim.claimName, BACKUP_CLAIM);
    assert.equal(pod.spec.volumes[0].persistentVolumeClaim.readOnly, true);
    assert.equal(container.volumeMounts[0].readOnly, true);
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.ok(pod.spec.activeDeadlineSeconds > 0);
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.ok(!Object.keys(pod.metadata.labels).some((key) => key.startsWith('koa-mongodb/')), 'not admitted to MongoDB');
  });
});
