import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { imagePullSecrets, type ImagePull } from './imagePull';
import type { AppLabels } from './labels';
import type { MongoAdminAccess, MongoConnection } from './mongodb';
import { annotations } from './skipAwait';

export interface DatabaseUsersArgs {
  namespace: pulumi.Input<string>;
  /** The Jobs' pods: MongoDB's NetworkPolicy admits them (MongoDbArgs.userSyncLabels). */
  labels: AppLabels;
  /** The admin image (admin/Dockerfile), whose programs these Jobs run (admin/src/users). */
  image: ImagePull;
  /** Where MongoDB is and the application user's env sources (MongoDb.connection). */
  mongo: MongoConnection;
  /** Root's login and the digest of the credentials and the data (MongoDb.admin). */
  admin: MongoAdminAccess;
  /** The application users are named this, a dash and a tag of the password (see appUserName). */
  appUserPrefix: string;
  /** The backup user's env sources (MongoDb.backupConnection) and its names' prefix (BACKUP_USER_PREFIX). */
  backup: { username: k8s.types.input.core.v1.EnvVarSource; password: k8s.types.input.core.v1.EnvVarSource; prefix: string };
  /** What the users Job waits for: MongoDB running (MongoDb.ready). Its own retries then only cover restarts. */
  after: pulumi.Input<pulumi.Resource>[];
  /**
   * The clients that log in as the application user: the retire Job runs once their rollout is done, and
   * waits their termination grace period first, so that no old pod still uses an earlier user.
   */
  clients: { rollout: pulumi.Input<pulumi.Resource>[]; drainSeconds: number };
  /** Where the Jobs were declared before (the MongoDb component): aliased, so an existing stack replaces them in place. */
  formerParent?: pulumi.Resource;
  skipAwait?: boolean;
}

/**
 * The application's MongoDB users, kept in line with MongoDB's Secret by two Jobs that log in as root, from
 * the admin image (so a change to the service's code changes neither). Two users, the same way: the
 * application's (`<prefix>-<tag>`, readWrite) and the backup CronJob's (`backup-<tag>`, read; its password
 * derived from the application's, so rotated with it):
 * - `<name>-users` creates each current user, or resets its password and roles;
 * - `<name>-retire-users`, after the clients' rollout and their grace period, drops the earlier users of each.
 * The image's init scripts run only on an empty data directory; these run whenever the credentials or the
 * claim change (the pod template carries MongoDB's digest of them, and a changed template replaces the Job),
 * so rotated passwords and kept or adopted data both work. A failed run is retried by the next `pulumi up`
 * (replaceUnready).
 */
export class DatabaseUsers extends pulumi.ComponentResource {
  readonly usersJob: k8s.batch.v1.Job;
  readonly retireJob: k8s.batch.v1.Job;

  constructor(name: string, args: DatabaseUsersArgs, opts?: pulumi.ComponentResourceOptions) {
    super('koa-mongodb:database:DatabaseUsers', name, {}, opts);
    const aliases = args.formerParent ? [{ parent: args.formerParent }] : undefined;
    const job = (suffix: string, command: string[], extraEnv: k8s.types.input.core.v1.EnvVar[], dependsOn: pulumi.Input<pulumi.Resource>[]) =>
      new k8s.batch.v1.Job(
        `${name}-${suffix}`,
        {
          metadata: {
            name: `${name}-${suffix}`,
            namespace: args.namespace,
            labels: args.labels.all,
            annotations: annotations(args.skipAwait, { 'pulumi.com/replaceUnready': 'true' }),
          },
          spec: {
            backoffLimit: 6,
            activeDeadlineSeconds: 600,
            template: {
              metadata: { labels: args.labels.all, annotations: { 'koa-mongodb/credentials-digest': pulumi.secret(args.admin.digest) } },
              spec: {
                restartPolicy: 'Never',
                automountServiceAccountToken: false,
                enableServiceLinks: false,
                imagePullSecrets: imagePullSecrets(args.image),
                securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
                containers: [
                  {
                    name: suffix,
                    image: args.image.ref,
                    imagePullPolicy: args.image.pullPolicy,
                    command,
                    env: [
                      { name: 'MONGODB_URI', value: args.mongo.uri },
                      { name: 'MONGODB_ADMIN_USER', valueFrom: args.admin.username },
                      { name: 'MONGODB_ADMIN_PASSWORD', valueFrom: args.admin.password },
                      { name: 'MONGODB_USER', valueFrom: args.mongo.username },
                      { name: 'MONGODB_PASSWORD', valueFrom: args.mongo.password },
                      { name: 'MONGODB_DB', value: args.mongo.database },
                      { name: 'MONGODB_BACKUP_USER', valueFrom: args.backup.username },
                      { name: 'MONGODB_BACKUP_PASSWORD', valueFrom: args.backup.password },
                      ...extraEnv,
                    ],
                    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
                    securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                  },
                ],
              },
            },
          },
        },
        // Fixed names: a replacement must delete the old Job first.
        { parent: this, deleteBeforeReplace: true, dependsOn, aliases },
      );

    this.usersJob = job('users', ['node', 'dist/users/ensure-user-main.js'], [], args.after);
    this.retireJob = job(
      'retire-users',
      ['node', 'dist/users/retire-users-main.js'],
      [
        { name: 'MONGODB_USER_PREFIX', value: args.appUserPrefix },
        { name: 'MONGODB_BACKUP_USER_PREFIX', value: args.backup.prefix },
        { name: 'DRAIN_SECONDS', value: String(args.clients.drainSeconds) },
      ],
      [...args.clients.rollout, this.usersJob],
    );
    this.registerOutputs({ usersJob: this.usersJob.metadata.name, retireJob: this.retireJob.metadata.name });
  }
}
