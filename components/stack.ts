import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import path from 'node:path';
import type { StackConfig } from './config';
import { DataService } from './dataService';
import { appLabels } from './labels';
import { apiServerHost, isLoopback } from './minikube';
import { MongoDb } from './mongodb';
import { ServiceImage } from './serviceImage';

export const SERVICE_DIR = path.resolve(__dirname, '..', 'service');

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
  // One explicit provider bound to the configured context: `pulumi up` can never
  // land on whatever cluster kubectl happens to point at.
  const provider = new k8s.Provider('kubernetes', { context: cfg.kube.context, kubeconfig: cfg.kube.kubeconfig });
  const inCluster: pulumi.ComponentResourceOptions = {
    providers: [provider],
    transformations: cfg.skipAwait ? [skipAwait] : [],
  };

  const partOf = cfg.project;
  const serviceLabels = appLabels('data-service', 'api', partOf, cfg.stack);
  const mongoLabels = appLabels('mongodb', 'database', partOf, cfg.stack);

  const namespace = cfg.kube.createNamespace
    ? new k8s.core.v1.Namespace(
        'namespace',
        { metadata: { name: cfg.kube.namespace, labels: { 'app.kubernetes.io/part-of': partOf, 'app.kubernetes.io/managed-by': 'pulumi' } } },
        // Deleting a namespace deletes what is in it: kept along with the data when asked.
        { provider, retainOnDelete: cfg.retainOnDelete },
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
      docker: cfg.image.docker,
      minikubeProfile: cfg.minikube.profile,
      platform: cfg.image.platform,
      namespace,
      labels: serviceLabels.all,
    },
    inCluster,
  );

  const mongo = new MongoDb(
    'mongodb',
    {
      namespace,
      labels: mongoLabels,
      image: cfg.mongo.image,
      database: cfg.mongo.database,
      rootUsername: cfg.mongo.rootUsername,
      rootPassword: cfg.mongo.rootPassword,
      appUsername: cfg.mongo.appUsername,
      appPassword: cfg.mongo.appPassword,
      storageSize: cfg.mongo.storageSize,
      storageClass: cfg.mongo.storageClass,
      staticVolume: cfg.mongo.staticVolume ? { hostPath: cfg.mongo.hostPath } : undefined,
      wiredTigerCacheGb: cfg.mongo.wiredTigerCacheGb,
      resources: cfg.mongo.resources,
      retainOnDelete: cfg.retainOnDelete,
      clientSelector: serviceLabels.selector,
    },
    inCluster,
  );

  const service = new DataService(
    'data-service',
    {
      namespace,
      labels: serviceLabels,
      image: image.ref,
      imagePullPolicy: image.pullPolicy,
      imagePullSecret: image.pullSecretName,
      mongo: {
        host: mongo.host,
        port: mongo.port,
        database: mongo.database,
        collection: cfg.mongo.collection,
        secretName: mongo.secretName,
        usernameKey: mongo.secretKeys.appUsername,
        passwordKey: mongo.secretKeys.appPassword,
      },
      ...cfg.service,
    },
    // MongoDB ready first: the service's pods only turn ready once they can ping it.
    { ...inCluster, dependsOn: [mongo] },
  );

  const port = cfg.service.port;
  const portForward = pulumi.interpolate`kubectl --context ${cfg.kube.context} -n ${namespace} port-forward svc/${service.serviceName} ${port}:${port}`;
  return {
    url: serviceUrl(cfg, service),
    namespace,
    image: image.ref,
    mongoHost: mongo.host,
    portForward,
    kubeContext: cfg.kube.context,
  };
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
        'the url output assumes the port-forward command (see portForward), or set minikubeIp',
    );
    return forwarded;
  }
  return service.nodePort.apply((nodePort) => `http://${host}:${nodePort ?? cfg.service.port}`);
}

/**
 * Marks a Kubernetes object so that Pulumi creates it without waiting for it to
 * become ready: for clusters that run no pods (the local API server of
 * test/cluster) or deployments whose readiness is watched elsewhere.
 */
function skipAwait(args: pulumi.ResourceTransformationArgs): pulumi.ResourceTransformationResult | undefined {
  if (!args.type.startsWith('kubernetes:') || !args.props.metadata) return undefined;
  const metadata = args.props.metadata as { annotations?: Record<string, string> };
  return {
    props: { ...args.props, metadata: { ...metadata, annotations: { ...metadata.annotations, 'pulumi.com/skipAwait': 'true' } } },
    opts: args.opts,
  };
}
