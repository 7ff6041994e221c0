import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import path from 'node:path';
import { Backups } from './backups';
import type { StackConfig } from './config';
import { DatabaseUsers } from './databaseUsers';
import { DataService } from './dataService';
import { appLabels } from './labels';
import { annotations } from './skipAwait';
import { apiServerHost, isLoopback } from './kubeconfig';
import { BACKUP_USER_PREFIX, MongoDb } from './mongodb';
import { ServiceImage } from './serviceImage';

export const SERVICE_DIR = path.resolve(__dirname, '..', 'service');
/** The database's admin tasks (the users Jobs, the scheduled backup): an image of their own, built like the service's. */
export const ADMIN_DIR = path.resolve(__dirname, '..', 'admin');

/** The admin image's repository: beside the service's (same registry and path), named `data-admin`. */
export function adminRepository(serviceRepository: string): string {
  const slash = serviceRepository.lastIndexOf('/');
  return `${serviceRepository.slice(0, slash + 1)}data-admin`;
}

export interface StackOutputs {
  url: pulumi.Output<string>;
  namespace: pulumi.Output<string>;
  image: pulumi.Output<string>;
  mongoHost: pulumi.Output<string>;
  portForward: pulumi.Output<string>;
  kubeContext: string;
}

/** Every resource of the stack, from its typed config. index.ts only calls this and exports the result. */
export function createStack(cfg: StackConfig): StackOutputs {
  const provider = clusterProvider(cfg);
  const inCluster: pulumi.ComponentResourceOptions = { providers: [provider] };
  const onMinikube = cfg.kube.context === cfg.minikube.profile;

  const partOf = cfg.project;
  const serviceLabels = appLabels('data-service', 'api', partOf, cfg.stack);
  const mongoLabels = appLabels('mongodb', 'database', partOf, cfg.stack);
  const userSyncLabels = appLabels('mongodb-users', 'database-admin', partOf, cfg.stack);
  const backupLabels = appLabels('mongodb-backups', 'backup', partOf, cfg.stack);

  const namespace = cfg.kube.createNamespace
    ? new k8s.core.v1.Namespace(
        'namespace',
        {
          metadata: {
            name: cfg.kube.namespace,
            labels: { 'app.kubernetes.io/part-of': partOf, 'app.kubernetes.io/managed-by': 'pulumi' },
            annotations: annotations(cfg.skipAwait),
          },
        },
        // Deleting a namespace deletes what is in it: kept along with the data when asked.
        { provider, retainOnDelete: cfg.retainOnDelete, deleteBeforeReplace: true },
      ).metadata.name
    : pulumi.output(cfg.kube.namespace);

  const image = new ServiceImage(
    'data-service',
    {
      mode: cfg.image.mode,
      contextDir: SERVICE_DIR,
      repository: cfg.image.repository,
      reference: cfg.image.reference,
      registry: cfg.image.registry,
      minikubeProfile: cfg.minikube.profile,
      platform: cfg.image.platform,
      namespace,
      labels: serviceLabels.all,
    },
    // Only the registry mode's pull Secret is a Kubernetes object. A component waits for every provider
    // it is given (and this one waits for the cluster's identity), so in the other modes the image is
    // given none: its build starts with the program, beside the providers' start.
    cfg.image.mode === 'registry' ? inCluster : undefined,
  );

  // The admin image: built from admin/ as the service's is from service/ (its own content tag, so a change to
  // one never rebuilds the other, and a change to the service's code re-runs no Job); in prebuilt mode, adminImage.
  const adminImage = new ServiceImage(
    'data-admin',
    {
      mode: cfg.image.mode,
      contextDir: ADMIN_DIR,
      repository: adminRepository(cfg.image.repository),
      reference: cfg.image.adminReference,
      registry: cfg.image.registry,
      minikubeProfile: cfg.minikube.profile,
      platform: cfg.image.platform,
      namespace,
      labels: backupLabels.all,
    },
    cfg.image.mode === 'registry' ? inCluster : undefined,
  );

  const mongo = new MongoDb(
    'mongodb',
    {
      namespace,
      labels: mongoLabels,
      userSyncLabels,
      image: cfg.mongo.image,
      database: cfg.mongo.database,
      rootUsername: cfg.mongo.rootUsername,
      rootPassword: cfg.mongo.rootPassword,
      appUserPrefix: cfg.mongo.appUserPrefix,
      appPassword: cfg.mongo.appPassword,
      storageSize: cfg.mongo.storageSize,
      storageClass: cfg.mongo.storageClass,
      staticVolume: cfg.mongo.staticVolume ? { hostPath: cfg.mongo.hostPath } : undefined,
      wiredTigerCacheGb: cfg.mongo.wiredTigerCacheGb,
      resources: cfg.mongo.resources,
      retainOnDelete: cfg.retainOnDelete,
      skipAwait: cfg.skipAwait,
      clientSelector: serviceLabels.selector,
    },
    inCluster,
  );

  const service = new DataService(
    'data-service',
    {
      namespace,
      labels: serviceLabels,
      image,
      mongo: mongo.connection,
      collection: cfg.mongo.collection,
      awaitLoadBalancer: !onMinikube,
      skipAwait: cfg.skipAwait,
      ...cfg.service,
    },
    // MongoDB running first; the pods turn ready once their user exists (see MongoDb.ready).
    { ...inCluster, dependsOn: mongo.ready },
  );
  new Backups(
    'mongodb-backups',
    {
      namespace,
      labels: backupLabels,
      schedule: cfg.backup.schedule,
      keep: cfg.backup.keep,
      image: adminImage,
      // The backup user (read only), not the application's.
      mongo: mongo.backupConnection,
      storageSize: cfg.backup.storageSize,
      storageClass: cfg.mongo.storageClass,
      retainOnDelete: cfg.retainOnDelete,
      skipAwait: cfg.skipAwait,
    },
    { ...inCluster, dependsOn: mongo.ready },
  );
  // The application's users, from the admin image: the users Job once MongoDB runs; once the pods have
  // rolled onto the current user (and the old ones are gone), the retire Job drops the earlier users.
  new DatabaseUsers(
    'mongodb',
    {
      namespace,
      labels: userSyncLabels,
      image: adminImage,
      mongo: mongo.connection,
      admin: mongo.admin,
      appUserPrefix: cfg.mongo.appUserPrefix,
      backup: { username: mongo.backupConnection.username, password: mongo.backupConnection.password, prefix: BACKUP_USER_PREFIX },
      after: mongo.ready,
      clients: { rollout: [service], drainSeconds: service.gracePeriodSeconds },
      formerParent: mongo,
      skipAwait: cfg.skipAwait,
    },
    inCluster,
  );
  if (onMinikube && cfg.service.serviceType === 'LoadBalancer') {
    void pulumi.log.warn('serviceType LoadBalancer on Minikube: run `minikube tunnel` in another terminal for an address; `pulumi up` does not wait for one');
  }

  const port = cfg.service.port;
  const portForward = pulumi.interpolate`kubectl --context ${cfg.kube.context} -n ${namespace} port-forward svc/${service.serviceName} ${port}:${port}`;
  return {
    url: serviceUrl(cfg, service),
    namespace,
    image: image.ref,
    mongoHost: mongo.connection.host,
    portForward,
    kubeContext: cfg.kube.context,
  };
}

/**
 * One explicit provider bound to the configured context, so `pulumi up` can never land on whatever
 * cluster kubectl happens to point at, and told the cluster's identity: the uid of its kube-system
 * namespace, read through a second provider. After `minikube delete` + `minikube start` the context's
 * name and address are the same but the uid is new, so the provider is replaced and every object is
 * created again on the new cluster (rather than Pulumi believing they exist). (The image learns of a new
 * cluster from the node itself: see minikubeImage.ts.)
 */
function clusterProvider(cfg: StackConfig): k8s.Provider {
  const target = { context: cfg.kube.context, kubeconfig: cfg.kube.kubeconfig };
  const reader = new k8s.Provider('cluster-identity', target);
  const kubeSystem = k8s.core.v1.Namespace.get('cluster-identity', 'kube-system', { provider: reader });
  // When the provider is bumped past 4.29, add `upsertExistingObjects: true` here: from then on, creating
  // an object that exists (the namespace and claim kept by retainOnDelete) fails instead of adopting it.
  // enableSecretMutable: by default the provider REPLACES a Secret whose data changes, and a replacement of
  // our fixed-name Secret deletes it first, with every object that uses it: a password rotation deleted
  // the Deployment and MongoDB's StatefulSet (an outage). Updated in place, its new resourceVersion rolls
  // the pods instead (MongoConnection.revision).
  return new k8s.Provider('kubernetes', { ...target, clusterIdentifier: kubeSystem.metadata.uid, enableSecretMutable: true });
}

/**
 * The URL from the host: the Minikube node's IP and the node port (NodePort),
 * the load balancer's address (LoadBalancer, with `minikube tunnel`), or the
 * port-forward address (ClusterIP, or a node IP the host cannot reach).
 */
function serviceUrl(cfg: StackConfig, service: DataService): pulumi.Output<string> {
  const forwarded = pulumi.output(`http://localhost:${cfg.service.port}`);
  if (cfg.service.serviceType === 'ClusterIP') return forwarded;
  if (cfg.service.serviceType === 'LoadBalancer') {
    return service.service.status.apply((status) => {
      const ingress = status?.loadBalancer?.ingress?.[0];
      const host = ingress?.ip ?? ingress?.hostname;
      return host ? `http://${host}:${cfg.service.port}` : `http://localhost:${cfg.service.port}`;
    });
  }
  const host = cfg.minikube.ip ?? apiServerHost(cfg.kube.context, cfg.kube.kubeconfig);
  if (host === undefined || (cfg.minikube.ip === undefined && isLoopback(host))) {
    void pulumi.log.warn(
      `the node IP of context "${cfg.kube.context}" is not reachable from here (${host ?? 'not found'}); ` +
        `the url output assumes the port-forward command (see portForward), or set minikubeIp; if local port ${cfg.service.port} ` +
        `is taken (on macOS, AirPlay Receiver holds 5000), forward another one: \`kubectl port-forward svc/<service> 5050:${cfg.service.port}\``,
    );
    return forwarded;
  }
  return service.nodePort.apply((nodePort) => `http://${host}:${nodePort ?? cfg.service.port}`);
}
