import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { imagePullSecrets, type ImagePull } from './imagePull';
import type { AppLabels } from './labels';
import type { MongoConnection } from './mongodb';
import { annotations } from './skipAwait';

/** Where the backups volume is mounted, in the CronJob's pods and in the tools' reader pod. */
export const BACKUP_DIR = '/backups';
/**
 * The annotation of the backups claim that names the image able to read it (the admin image):
 * `npm run backup -- --list` and `npm run restore -- --from` start their short-lived reader pod with it.
 */
export const READER_IMAGE_ANNOTATION = 'koa-mongodb/reader-image';

export interface BackupsArgs {
  namespace: pulumi.Input<string>;
  labels: AppLabels;
  /** A cron expression (UTC); undefined: no CronJob (the volume and the backups on it stay, for --list and --from). */
  schedule?: string;
  /** How many backups to keep (the newest). */
  keep: number;
  /** The admin image (admin/Dockerfile): the CronJob runs it, and the tools' reader pod (the claim names it). */
  image: ImagePull;
  /** MongoDB as a client reaches it: where, the credentials' env sources, and the labels its NetworkPolicy admits. */
  mongo: MongoConnection;
  storageSize: string;
  storageClass: string;
  /** Keep the claim (the backups) on destroy, as MongoDB's own claim is kept. */
  retainOnDelete: boolean;
  skipAwait?: boolean;
}

/**
 * Backups on a schedule, in the cluster: a claim of their own and a CronJob that runs the admin image's
 * backup program (admin/src/backup-job.ts) against MongoDB's Service, writing `backup-<UTC time>.jsonl.gz`
 * (the format of `npm run backup`, docs/backup.md) and keeping the newest `keep`.
 *
 * Credentials: a user of its own, `backup-<tag>`, with `read` on the stack's database only: exactly what the
 * program does (find, listCollections, listIndexes). Not MongoDB's `backup` role: it is granted on the
 * admin database and reads every database of the server (and more), the opposite of least privilege here.
 * Its password is derived from the application password (MongoDb.backupConnection), so there is nothing
 * more to set and a rotation rotates it; the users Jobs make and retire it beside the application user.
 * The pods read it from MongoDB's Secret (`args.mongo` is that connection), only at start: a run retried
 * after a rotation logs in as the new user.
 */
export class Backups extends pulumi.ComponentResource {
  readonly claimName: pulumi.Output<string>;
  readonly cronJob?: k8s.batch.v1.CronJob;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('koa-mongodb:database:Backups', name, {}, opts);
    const parent = { parent: this, deleteBeforeReplace: true };
    const meta = (objectName: string, own?: Record<string, string>) => ({
      name: objectName,
      namespace: args.namespace,
      labels: args.labels.all,
      annotations: annotations(args.skipAwait, own),
    });

    const claim = new k8s.core.v1.PersistentVolumeClaim(
      name,
      {
        metadata: {
          ...meta(name),
          annotations: pulumi.output(args.image.ref).apply((image) => annotations(args.skipAwait, { [READER_IMAGE_ANNOTATION]: image }) ?? {}),
        },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: args.storageSize } },
          storageClassName: args.storageClass,
        },
      },
      { ...parent, retainOnDelete: args.retainOnDelete },
    );
    this.claimName = claim.metadata.name;

    if (args.schedule !== undefined) {
      const podLabels = { ...args.labels.all, ...args.mongo.clientLabels };
      this.cronJob = new k8s.batch.v1.CronJob(
        name,
        {
          metadata: meta(name),
          spec: {
            schedule: args.schedule,
            // A run missed while the cluster was down (a laptop asleep at minute 17) still starts if the
            // controller sees it within 50 minutes; older ones are skipped, not piled up.
            startingDeadlineSeconds: 3000,
            // Never two at once: the second would read while the first writes, and both prune.
            concurrencyPolicy: 'Forbid',
            // Kept so that `kubectl get cronjob,jobs` and `npm run diagnose` show the last runs, failures
            // included (a failed Job and its pod's log stay until three later failures replace them).
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
            jobTemplate: {
              metadata: { labels: podLabels },
              spec: {
                // One retry (MongoDB restarting); a run that cannot finish in 30 minutes is stuck.
                backoffLimit: 1,
                activeDeadlineSeconds: 1800,
                template: {
                  metadata: { labels: podLabels },
                  spec: {
                    restartPolicy: 'Never',
                    automountServiceAccountToken: false,
                    enableServiceLinks: false,
                    imagePullSecrets: imagePullSecrets(args.image),
                    // fsGroup: the volume is writable by the group on provisioners that honour it.
                    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
                    containers: [
                      {
                        name: 'backup',
                        image: args.image.ref,
                        imagePullPolicy: args.image.pullPolicy,
                        command: ['node', 'dist/backup-job.js'],
                        env: [
                          { name: 'MONGODB_URI', value: args.mongo.uri },
                          { name: 'MONGODB_USER', valueFrom: args.mongo.username },
                          { name: 'MONGODB_PASSWORD', valueFrom: args.mongo.password },
                          { name: 'MONGODB_DB', value: args.mongo.database },
                          { name: 'BACKUP_DIR', value: BACKUP_DIR },
                          { name: 'BACKUP_KEEP', value: String(args.keep) },
                          // The heap bounded well inside the limit: the backup streams (measured: 100 000
                          // documents in 91 MB of RSS with a 40 MB heap, docs/backup.md).
                          { name: 'NODE_OPTIONS', value: '--max-old-space-size=96' },
                        ],
                        resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
                        securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                        volumeMounts: [{ name: 'backups', mountPath: BACKUP_DIR }],
                      },
                    ],
                    volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: claim.metadata.name } }],
                  },
                },
              },
            },
          },
        },
        parent,
      );
    }
    this.registerOutputs({ claimName: this.claimName, cronJobName: this.cronJob?.metadata.name });
  }
}
