import { createHash, createHmac, scryptSync } from 'node:crypto';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { AppLabels } from './labels';
import { annotations } from './skipAwait';

export const MONGO_PORT = 27017;
/**
 * The label this component hands its other clients (the backup CronJob's pods): a pod that wears it is
 * admitted by the NetworkPolicy. A client takes it from `connection.clientLabels`, never by this name.
 */
export const CLIENT_LABEL = 'koa-mongodb/mongodb-client';
/** The official mongo image's user; numeric so that runAsNonRoot can verify it. */
const MONGO_UID = 999;

/** Keys of the MongoDB Secret. Callers use `connection`, never these names. */
export const SECRET_KEYS = {
  rootUsername: 'root-username',
  rootPassword: 'root-password',
  appUsername: 'app-username',
  appPassword: 'app-password',
  backupUsername: 'backup-username',
  backupPassword: 'backup-password',
} as const;

/** The backup user's name is this, a dash and a tag of its password (as the application user's, appUserName). */
export const BACKUP_USER_PREFIX = 'backup';

/**
 * Everything a client needs to reach MongoDB as the application user: where it is, and the env
 * sources for the credentials (secretKeyRefs into this component's Secret, in the spirit of
 * kubernetesx's `secret.asEnvValue`). A client takes it whole and never learns the Secret's layout.
 */
export interface MongoConnection {
  /** The headless Service's DNS name: stable while the pod moves. */
  host: pulumi.Output<string>;
  port: number;
  database: string;
  /** `mongodb://host:port/`, without credentials (they travel as env, never in the URI). */
  uri: pulumi.Output<string>;
  username: k8s.types.input.core.v1.EnvVarSource;
  password: k8s.types.input.core.v1.EnvVarSource;
  /**
   * Changes whenever the credentials do (the Secret's resourceVersion): put into a client's pod template,
   * so that a rotated password rolls the client's pods, which read it from the environment only at start.
   * (Their open connections stay logged in; every new one would fail with the old password.)
   */
  revision: pulumi.Output<string>;
  /** Labels that admit a pod through MongoDB's NetworkPolicy: put them on a client's pod template. */
  clientLabels: Record<string, string>;
}

/**
 * What managing the application's users takes beyond a client's connection (components/databaseUsers.ts):
 * root's login, as env sources into this component's Secret, and a digest that changes with the credentials.
 */
export interface MongoAdminAccess {
  username: k8s.types.input.core.v1.EnvVarSource;
  password: k8s.types.input.core.v1.EnvVarSource;
  /**
   * Of the credentials and the data's claim: a Job that carries it in its pod template is replaced (runs
   * again) when a password is rotated or the data is new or adopted, and only then.
   */
  digest: pulumi.Output<string>;
}

/**
 * The application user of a password: `<prefix>-<10 hex digits>`. A rotation thus makes a second user, and
 * the old pods keep theirs until they are gone (see admin/src/users/retire-users.ts). The tag is a slow hash (scrypt) of
 * the password, so the name, which MongoDB logs, tells less about it than MongoDB's own stored credentials.
 */
export function appUserName(prefix: string, database: string, password: string): string {
  return `${prefix}-${scryptSync(password, `koa-mongodb:${database}:${prefix}`, 5).toString('hex')}`;
}

/**
 * The backup user's password: derived from the application password (an HMAC-SHA256 of a fixed label keyed
 * by it, hex), so that it is nothing more for the user to set and a rotation of the application password
 * rotates it too. It tells nothing about the application password (HMAC is one-way).
 */
export function backupPassword(appPassword: string): string {
  return createHmac('sha256', appPassword).update('koa-mongodb:backup-user').digest('hex');
}

export interface MongoDbArgs {
  namespace: pulumi.Input<string>;
  labels: AppLabels;
  /** Labels of the users Jobs' pods (DatabaseUsers), admitted by the NetworkPolicy next to the clients. */
  userSyncLabels: AppLabels;
  image: string;
  database: string;
  rootUsername: string;
  rootPassword: pulumi.Input<string>;
  /** The application user's name is this, a dash and a tag of its password (see appUserName). */
  appUserPrefix: string;
  appPassword: pulumi.Input<string>;
  storageSize: string;
  storageClass: string;
  /** A static hostPath PersistentVolume (as the guide has) instead of dynamic provisioning. */
  staticVolume?: { hostPath: string };
  wiredTigerCacheGb: number;
  resources: k8s.types.input.core.v1.ResourceRequirements;
  /** Keep the volume (claim, and static PV) on destroy. */
  retainOnDelete: boolean;
  /** Pods allowed to reach MongoDB (NetworkPolicy); nobody else is. */
  clientSelector: Record<string, string>;
  /** Create objects without waiting for readiness (see skipAwait.ts). */
  skipAwait?: boolean;
}

/**
 * The static volume's permission step. hostPath volumes ignore fsGroup, so the data directory is handed
 * to uid 999 on every start. mongod creates journal/ and diagnostic.data/ as 0700 for uid 999, which
 * root cannot even enter with CHOWN alone: DAC_READ_SEARCH lets `chown -R` walk into them.
 */
export const VOLUME_PERMISSIONS = {
  command: ['chown', '-R', `${MONGO_UID}:${MONGO_UID}`, '/data/db'],
  capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_READ_SEARCH'] },
};

/**
 * MongoDB as the guide runs it, hardened: root and app credentials in a Secret, data on a
 * PersistentVolumeClaim, a one-replica StatefulSet running as the mongodb user (999) with cheap TCP
 * probes, a headless Service that is the StatefulSet's serviceName, and a NetworkPolicy that admits only
 * the clients (the service's pods, and the pods that wear `connection.clientLabels`) and the users Jobs.
 * The application user itself is made by those Jobs (DatabaseUsers), from `admin`.
 */
export class MongoDb extends pulumi.ComponentResource {
  /** How the application reaches MongoDB as its own least-privileged user. */
  readonly connection: MongoConnection;
  /** The same, as the backup user (`read` on the application database only; see components/backups.ts). */
  readonly backupConnection: MongoConnection;
  readonly statefulSet: k8s.apps.v1.StatefulSet;
  readonly claimName: pulumi.Output<string>;
  /** Root's login and the credentials' digest, for the users Jobs (DatabaseUsers). */
  readonly admin: MongoAdminAccess;
  /**
   * What a client waits for: MongoDB running. Not the users Job: the pods start beside it, and one that
   * comes up before its user exists is unready for that moment (no request fails) and ready within a second
   * of the Job (measured); waiting would add the Job's run to every first `up` and rotation.
   */
  readonly ready: pulumi.Resource[];

  constructor(name: string, args: MongoDbArgs, opts?: pulumi.ComponentResourceOptions) {
    super('koa-mongodb:database:MongoDb', name, {}, opts);
    // Derived from a secret, so itself kept secret in the state.
    const appUsername = pulumi.output(args.appPassword).apply((password) => appUserName(args.appUserPrefix, args.database, password));
    const backupPass = pulumi.secret(pulumi.output(args.appPassword).apply(backupPassword));
    const backupUsername = backupPass.apply((password) => appUserName(BACKUP_USER_PREFIX, args.database, password));
    // Fixed names: a replacement must delete the old object first, even when the provider itself is
    // replaced (a new cluster), where create-then-delete would delete the new object by its name.
    const parent = { parent: this, deleteBeforeReplace: true };
    const meta = (suffix: string) => ({
      name: suffix ? `${name}-${suffix}` : name,
      namespace: args.namespace,
      labels: args.labels.all,
      annotations: annotations(args.skipAwait),
    });

    const secret = new k8s.core.v1.Secret(
      `${name}-credentials`,
      {
        metadata: meta('credentials'),
        type: 'Opaque',
        stringData: {
          [SECRET_KEYS.rootUsername]: args.rootUsername,
          [SECRET_KEYS.rootPassword]: pulumi.secret(args.rootPassword),
          [SECRET_KEYS.appUsername]: appUsername,
          [SECRET_KEYS.appPassword]: pulumi.secret(args.appPassword),
          [SECRET_KEYS.backupUsername]: backupUsername,
          [SECRET_KEYS.backupPassword]: backupPass,
        },
      },
      parent,
    );
    const fromSecret = (key: string): k8s.types.input.core.v1.EnvVarSource => ({ secretKeyRef: { name: secret.metadata.name, key } });

    const keep = { ...parent, retainOnDelete: args.retainOnDelete };
    let volumeName: pulumi.Output<string> | undefined;
    if (args.staticVolume) {
      const volume = new k8s.core.v1.PersistentVolume(
        `${name}-data`,
        {
          // PersistentVolumes are cluster-scoped: the namespace goes into the name.
          metadata: { name: pulumi.interpolate`${args.namespace}-${name}-data`, labels: args.labels.all, annotations: annotations(args.skipAwait) },
          spec: {
            capacity: { storage: args.storageSize },
            accessModes: ['ReadWriteOnce'],
            persistentVolumeReclaimPolicy: 'Retain',
            storageClassName: '',
            hostPath: { path: args.staticVolume.hostPath, type: 'DirectoryOrCreate' },
          },
        },
        keep,
      );
      volumeName = volume.metadata.name;
    }
    const claim = new k8s.core.v1.PersistentVolumeClaim(
      `${name}-data`,
      {
        metadata: meta('data'),
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: args.storageSize } },
          storageClassName: args.staticVolume ? '' : args.storageClass,
          volumeName,
        },
      },
      keep,
    );
    this.claimName = claim.metadata.name;

    const service = new k8s.core.v1.Service(
      name,
      {
        metadata: meta(''),
        spec: {
          clusterIP: 'None',
          selector: args.labels.selector,
          ports: [{ name: 'mongodb', port: MONGO_PORT, targetPort: 'mongodb', protocol: 'TCP' }],
        },
      },
      parent,
    );
    const host = pulumi.interpolate`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;

    // TCP probes cost nothing; a probe that forks mongosh (a whole Node runtime) next to mongod's cache
    // risks the memory limit and wrote its history into the data volume. The users Job and the service's
    // own readiness are the real queries.
    const port = { tcpSocket: { port: 'mongodb' } };

    this.statefulSet = new k8s.apps.v1.StatefulSet(
      name,
      {
        metadata: meta(''),
        spec: {
          serviceName: service.metadata.name,
          replicas: 1,
          selector: { matchLabels: args.labels.selector },
          template: {
            metadata: { labels: args.labels.all },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              terminationGracePeriodSeconds: 30,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: MONGO_UID,
                runAsGroup: MONGO_UID,
                fsGroup: MONGO_UID,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              initContainers: args.staticVolume
                ? [
                    {
                      name: 'volume-permissions',
                      image: args.image,
                      command: VOLUME_PERMISSIONS.command,
                      securityContext: {
                        runAsUser: 0,
                        runAsNonRoot: false,
                        allowPrivilegeEscalation: false,
                        capabilities: VOLUME_PERMISSIONS.capabilities,
                      },
                      volumeMounts: [{ name: 'data', mountPath: '/data/db' }],
                    },
                  ]
                : undefined,
              containers: [
                {
                  name: 'mongodb',
                  image: args.image,
                  imagePullPolicy: 'IfNotPresent',
                  args: ['--wiredTigerCacheSizeGB', String(args.wiredTigerCacheGb)],
                  ports: [{ name: 'mongodb', containerPort: MONGO_PORT, protocol: 'TCP' }],
                  env: [
                    // The image creates this root user on an empty data directory (and then runs with --auth).
                    { name: 'MONGO_INITDB_ROOT_USERNAME', valueFrom: fromSecret(SECRET_KEYS.rootUsername) },
                    { name: 'MONGO_INITDB_ROOT_PASSWORD', valueFrom: fromSecret(SECRET_KEYS.rootPassword) },
                    // Anything that writes a dotfile (a mongosh session from `kubectl exec`) writes it here, not into the data volume.
                    { name: 'HOME', value: '/tmp' },
                  ],
                  resources: args.resources,
                  startupProbe: { ...port, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 60 },
                  readinessProbe: { ...port, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
                  livenessProbe: { ...port, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 },
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                  volumeMounts: [
                    { name: 'data', mountPath: '/data/db' },
                    { name: 'configdb', mountPath: '/data/configdb' },
                    { name: 'tmp', mountPath: '/tmp' },
                  ],
                },
              ],
              volumes: [
                { name: 'data', persistentVolumeClaim: { claimName: claim.metadata.name } },
                { name: 'configdb', emptyDir: {} },
                { name: 'tmp', emptyDir: {} },
              ],
            },
          },
        },
      },
      parent,
    );

    const uri = pulumi.interpolate`mongodb://${host}:${MONGO_PORT}/`;
    const digest = pulumi
      .all([args.rootUsername, args.rootPassword, appUsername, args.appPassword, args.database, claim.metadata.uid])
      .apply((parts) => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32));
    this.admin = { username: fromSecret(SECRET_KEYS.rootUsername), password: fromSecret(SECRET_KEYS.rootPassword), digest };
    this.ready = [this.statefulSet];

    const clientLabels = { [CLIENT_LABEL]: name };
    new k8s.networking.v1.NetworkPolicy(
      `${name}-clients`,
      {
        metadata: meta('clients'),
        spec: {
          podSelector: { matchLabels: args.labels.selector },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [
                { podSelector: { matchLabels: args.clientSelector } },
                { podSelector: { matchLabels: args.userSyncLabels.selector } },
                { podSelector: { matchLabels: clientLabels } },
              ],
              ports: [{ protocol: 'TCP', port: MONGO_PORT }],
            },
          ],
        },
      },
      parent,
    );

    this.connection = {
      host,
      port: MONGO_PORT,
      database: args.database,
      uri,
      username: fromSecret(SECRET_KEYS.appUsername),
      password: fromSecret(SECRET_KEYS.appPassword),
      revision: secret.metadata.resourceVersion,
      clientLabels,
    };
    this.backupConnection = { ...this.connection, username: fromSecret(SECRET_KEYS.backupUsername), password: fromSecret(SECRET_KEYS.backupPassword) };
    this.registerOutputs({ host, database: args.database, claimName: this.claimName });
  }
}
