import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { Resources } from './config';
import type { AppLabels } from './labels';

export const MONGO_PORT = 27017;

/** Keys of the MongoDB Secret, shared with the data service's secretKeyRefs. */
export const SECRET_KEYS = {
  rootUsername: 'root-username',
  rootPassword: 'root-password',
  appUsername: 'app-username',
  appPassword: 'app-password',
} as const;

export interface MongoDbArgs {
  namespace: pulumi.Input<string>;
  labels: AppLabels;
  image: string;
  database: string;
  rootUsername: string;
  rootPassword: pulumi.Input<string>;
  appUsername: string;
  appPassword: pulumi.Input<string>;
  storageSize: string;
  storageClass: string;
  /** A static hostPath PersistentVolume (as the guide has) instead of dynamic provisioning. */
  staticVolume?: { hostPath: string };
  wiredTigerCacheGb: number;
  resources: Resources;
  /** Keep the volume (claim, and static PV) on destroy. */
  retainOnDelete: boolean;
  /** Pods allowed to reach MongoDB (NetworkPolicy); nobody else is. */
  clientSelector: Record<string, string>;
}

/**
 * Creates the application user with readWrite on the application database
 * only. The official image runs this once, on first start with an empty data
 * directory, authenticated as root; passwords come from the Secret through env.
 */
export const INIT_SCRIPT = `// Run once by the mongo image on an empty data directory (docker-entrypoint-initdb.d).
const database = process.env.MONGO_APP_DATABASE;
db.getSiblingDB(database).createUser({
  user: process.env.MONGO_APP_USERNAME,
  pwd: process.env.MONGO_APP_PASSWORD,
  roles: [{ role: 'readWrite', db: database }],
});
print('created application user ' + process.env.MONGO_APP_USERNAME + ' with readWrite on ' + database);
`;

/**
 * MongoDB as the guide runs it, hardened: root and app credentials in a Secret,
 * data on a PersistentVolumeClaim, a one-replica StatefulSet running as the
 * mongodb user (999) with mongosh ping probes, a headless Service that is the
 * StatefulSet's serviceName, and a NetworkPolicy that admits only the data service.
 */
export class MongoDb extends pulumi.ComponentResource {
  /** In-cluster DNS name clients connect to (the headless Service). */
  readonly host: pulumi.Output<string>;
  readonly port = MONGO_PORT;
  readonly database: string;
  readonly serviceName: pulumi.Output<string>;
  readonly secretName: pulumi.Output<string>;
  readonly secretKeys = SECRET_KEYS;
  readonly statefulSet: k8s.apps.v1.StatefulSet;
  readonly claimName: pulumi.Output<string>;

  constructor(name: string, args: MongoDbArgs, opts?: pulumi.ComponentResourceOptions) {
    super('koa-mongodb:database:MongoDb', name, {}, opts);
    const parent = { parent: this };
    const meta = (suffix: string) => ({ name: suffix ? `${name}-${suffix}` : name, namespace: args.namespace, labels: args.labels.all });
    this.database = args.database;

    const secret = new k8s.core.v1.Secret(
      `${name}-credentials`,
      {
        metadata: meta('credentials'),
        type: 'Opaque',
        stringData: {
          [SECRET_KEYS.rootUsername]: args.rootUsername,
          [SECRET_KEYS.rootPassword]: pulumi.secret(args.rootPassword),
          [SECRET_KEYS.appUsername]: args.appUsername,
          [SECRET_KEYS.appPassword]: pulumi.secret(args.appPassword),
        },
      },
      parent,
    );
    this.secretName = secret.metadata.name;

    const init = new k8s.core.v1.ConfigMap(`${name}-init`, { metadata: meta('init'), data: { '01-create-app-user.js': INIT_SCRIPT } }, parent);

    const keep = { ...parent, retainOnDelete: args.retainOnDelete };
    let volumeName: pulumi.Output<string> | undefined;
    if (args.staticVolume) {
      const volume = new k8s.core.v1.PersistentVolume(
        `${name}-data`,
        {
          // PersistentVolumes are cluster-scoped: the namespace goes into the name.
          metadata: { name: pulumi.interpolate`${args.namespace}-${name}-data`, labels: args.labels.all },
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
    this.serviceName = service.metadata.name;
    this.host = pulumi.interpolate`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;

    const fromSecret = (key: string) => ({ valueFrom: { secretKeyRef: { name: secret.metadata.name, key } } });
    // mongosh starts a whole JS runtime: probes are slow and memory-hungry, so they run rarely with long timeouts.
    const ping = { exec: { command: ['mongosh', '--quiet', '--norc', '--eval', 'quit(db.adminCommand({ ping: 1 }).ok === 1 ? 0 : 1)'] } };

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
                runAsUser: 999,
                runAsGroup: 999,
                fsGroup: 999,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              // hostPath volumes ignore fsGroup: hand the directory to uid 999 once, with CHOWN only.
              initContainers: args.staticVolume
                ? [
                    {
                      name: 'volume-permissions',
                      image: args.image,
                      command: ['chown', '-R', '999:999', '/data/db'],
                      securityContext: {
                        runAsUser: 0,
                        runAsNonRoot: false,
                        allowPrivilegeEscalation: false,
                        capabilities: { drop: ['ALL'], add: ['CHOWN'] },
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
                    { name: 'MONGO_INITDB_ROOT_USERNAME', ...fromSecret(SECRET_KEYS.rootUsername) },
                    { name: 'MONGO_INITDB_ROOT_PASSWORD', ...fromSecret(SECRET_KEYS.rootPassword) },
                    { name: 'MONGO_APP_USERNAME', ...fromSecret(SECRET_KEYS.appUsername) },
                    { name: 'MONGO_APP_PASSWORD', ...fromSecret(SECRET_KEYS.appPassword) },
                    { name: 'MONGO_APP_DATABASE', value: args.database },
                  ],
                  resources: args.resources,
                  startupProbe: { ...ping, periodSeconds: 10, timeoutSeconds: 10, failureThreshold: 30 },
                  readinessProbe: { ...ping, periodSeconds: 10, timeoutSeconds: 10, failureThreshold: 3 },
                  livenessProbe: { ...ping, periodSeconds: 30, timeoutSeconds: 15, failureThreshold: 4 },
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                  volumeMounts: [
                    { name: 'data', mountPath: '/data/db' },
                    { name: 'configdb', mountPath: '/data/configdb' },
                    { name: 'tmp', mountPath: '/tmp' },
                    { name: 'init', mountPath: '/docker-entrypoint-initdb.d', readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: 'data', persistentVolumeClaim: { claimName: claim.metadata.name } },
                { name: 'configdb', emptyDir: {} },
                { name: 'tmp', emptyDir: {} },
                { name: 'init', configMap: { name: init.metadata.name } },
              ],
            },
          },
        },
      },
      parent,
    );

    new k8s.networking.v1.NetworkPolicy(
      `${name}-clients`,
      {
        metadata: meta('clients'),
        spec: {
          podSelector: { matchLabels: args.labels.selector },
          policyTypes: ['Ingress'],
          ingress: [{ from: [{ podSelector: { matchLabels: args.clientSelector } }], ports: [{ protocol: 'TCP', port: MONGO_PORT }] }],
        },
      },
      parent,
    );

    this.registerOutputs({
      host: this.host,
      port: this.port,
      database: this.database,
      serviceName: this.serviceName,
      secretName: this.secretName,
      claimName: this.claimName,
    });
  }
}
