import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { LogLevel, ServiceType } from './config';
import { imagePullSecrets, type ImagePull } from './imagePull';
import type { AppLabels } from './labels';
import { annotations } from './skipAwait';
import type { MongoConnection } from './mongodb';

export const CONTAINER_PORT = 5000;
/** /metrics on a port of its own: scraped inside the cluster, never behind the public Service. */
export const METRICS_PORT = 9464;
/** Seconds the pod keeps serving after it is marked for deletion, while endpoints are removed everywhere. */
export const PRE_STOP_SECONDS = 5;
/** Longest the service then waits for in-flight requests (SHUTDOWN_TIMEOUT_MS), inside the grace period. */
export const DRAIN_SECONDS = 20;

export interface DataServiceArgs {
  namespace: pulumi.Input<string>;
  labels: AppLabels;
  image: ImagePull;
  /** MongoDB as the service's own user, handed over whole by the MongoDb component. */
  mongo: MongoConnection;
  collection: string;
  /** Pods at the first rollout; the HPA owns the count afterwards. */
  replicas: number;
  minReplicas: number;
  maxReplicas: number;
  targetCpuPercent: number;
  resources: k8s.types.input.core.v1.ResourceRequirements;
  serviceType: ServiceType;
  /** The Service's port. */
  port: number;
  nodePort?: number;
  /**
   * Wait for a LoadBalancer's address. Off on Minikube, where one only appears while `minikube tunnel`
   * runs: `pulumi up` would otherwise wait the whole await timeout for it.
   */
  awaitLoadBalancer: boolean;
  logLevel: LogLevel;
  corsOrigins: string;
  /** More of the service's variables (its tuning: limits, timeouts, pool sizes); the component's own come after them. */
  tuning?: Record<string, string>;
  /** Longest `pulumi up` waits for a rollout (the provider's `pulumi.com/timeoutSeconds`). */
  rolloutTimeoutSeconds: number;
  /** Create objects without waiting for readiness (see skipAwait.ts). */
  skipAwait?: boolean;
}

/**
 * The Koa data service: a Deployment that rolls out without dropping requests,
 * a Service in front of it, an HPA that owns the replica count, and a
 * PodDisruptionBudget that keeps one pod up through node drains.
 */
export class DataService extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  readonly serviceName: pulumi.Output<string>;
  /** The node port the API server assigned (NodePort and LoadBalancer types). */
  readonly nodePort: pulumi.Output<number | undefined>;
  readonly servicePort: number;
  /** Longest a replaced pod may go on using what it started with (its termination grace period). */
  readonly gracePeriodSeconds = PRE_STOP_SECONDS + DRAIN_SECONDS + 5;

  constructor(name: string, args: DataServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('koa-mongodb:service:DataService', name, {}, opts);
    // Fixed names: a replacement deletes first (see MongoDb).
    const parent = { parent: this, deleteBeforeReplace: true };
    const metadata = { name, namespace: args.namespace, labels: args.labels.all, annotations: annotations(args.skipAwait) };
    const env = (vars: Record<string, pulumi.Input<string>>) => Object.entries(vars).map(([envName, value]) => ({ name: envName, value }));

    this.deployment = new k8s.apps.v1.Deployment(
      name,
      {
        metadata: { ...metadata, annotations: annotations(args.skipAwait, { 'pulumi.com/timeoutSeconds': String(args.rolloutTimeoutSeconds) }) },
        spec: {
          // The starting count only: from then on the HPA owns spec.replicas (see ignoreChanges).
          replicas: args.replicas,
          selector: { matchLabels: args.labels.selector },
          // Surge first, never go below the current count: a rollout drops no requests.
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          template: {
            metadata: {
              labels: args.labels.all,
              annotations: {
                'prometheus.io/scrape': 'true',
                'prometheus.io/port': String(METRICS_PORT),
                'prometheus.io/path': '/metrics',
                // A rotated password rolls the pods (see MongoConnection.revision).
                'koa-mongodb/credentials-revision': args.mongo.revision,
              },
            },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              terminationGracePeriodSeconds: this.gracePeriodSeconds,
              imagePullSecrets: imagePullSecrets(args.image),
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 1000,
                runAsGroup: 1000,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              containers: [
                {
                  name: 'data-service',
                  image: args.image.ref,
                  imagePullPolicy: args.image.pullPolicy,
                  ports: [
                    { name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP' },
                    { name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
                  ],
                  env: [
                    // First: where a name came twice, the later entry would win, so the stack's own come after.
                    ...env(args.tuning ?? {}),
                    ...env({
                      PORT: String(CONTAINER_PORT),
                      METRICS_PORT: String(METRICS_PORT),
                      // The Service's DNS name: stable while MongoDB's pod moves (see README, DNS).
                      MONGODB_URI: args.mongo.uri,
                      MONGODB_DB: args.mongo.database,
                      MONGODB_COLLECTION: args.collection,
                      MONGODB_AUTH_SOURCE: args.mongo.database,
                      LOG_LEVEL: args.logLevel,
                      CORS_ORIGINS: args.corsOrigins,
                      SHUTDOWN_TIMEOUT_MS: String(DRAIN_SECONDS * 1000),
                    }),
                    { name: 'MONGODB_USER', valueFrom: args.mongo.username },
                    { name: 'MONGODB_PASSWORD', valueFrom: args.mongo.password },
                    // The container's memory limit (`memoryLimit`), from which the service sizes its budget of
                    // request bodies held at once (BODY_BUDGET_BYTES): past it a POST is shed, never the pod.
                    { name: 'MEMORY_LIMIT_BYTES', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1' } } },
                  ],
                  resources: args.resources,
                  // Probes on the internal port, beside /metrics: public connections cannot starve them.
                  // Every second: a new pod takes traffic within a second of being able to (the kubelet's
                  // first probe comes as the container starts, before the process listens; at 5 s the
                  // next one came up to 5 s later, on every pod of every rollout). Five misses in a row
                  // take a pod out: 5 s of quick 503s, at most 10 s when each probe times out (the kubelet
                  // probes one at a time, so a 2 s timeout spaces them 2 s apart); 10 s before.
                  readinessProbe: {
                    httpGet: { path: '/readyz', port: 'metrics' },
                    periodSeconds: 1,
                    timeoutSeconds: 2,
                    failureThreshold: 5,
                  },
                  livenessProbe: {
                    httpGet: { path: '/healthz', port: 'metrics' },
                    initialDelaySeconds: 5,
                    periodSeconds: 10,
                    timeoutSeconds: 3,
                    failureThreshold: 3,
                  },
                  // Keep serving while the pod's endpoint is removed from every node, then SIGTERM drains.
                  lifecycle: { preStop: { exec: { command: ['sleep', String(PRE_STOP_SECONDS)] } } },
                  securityContext: {
                    readOnlyRootFilesystem: true,
                    allowPrivilegeEscalation: false,
                    capabilities: { drop: ['ALL'] },
                  },
                  volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
                },
              ],
              volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '16Mi' } }],
            },
          },
        },
      },
      { ...parent, ignoreChanges: ['spec.replicas'] },
    );

    const skipAwait = args.skipAwait || (args.serviceType === 'LoadBalancer' && !args.awaitLoadBalancer);
    this.service = new k8s.core.v1.Service(
      name,
      {
        metadata: { ...metadata, annotations: annotations(skipAwait) },
        spec: {
          type: args.serviceType,
          selector: args.labels.selector,
          ports: [
            {
              name: 'http',
              port: args.port,
              targetPort: 'http',
              protocol: 'TCP',
              nodePort: args.serviceType === 'ClusterIP' ? undefined : args.nodePort,
            },
          ],
        },
      },
      parent,
    );
    this.serviceName = this.service.metadata.name;
    this.servicePort = args.port;
    this.nodePort = this.service.spec.ports.apply((ports) => ports[0]?.nodePort);

    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      name,
      {
        metadata,
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: this.deployment.metadata.name },
          minReplicas: args.minReplicas,
          maxReplicas: args.maxReplicas,
          metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: args.targetCpuPercent } } }],
          behavior: {
            // Up fast (double or +2 pods a 15 s), down slowly (one pod a minute after 2 minutes calm): no flapping.
            scaleUp: {
              stabilizationWindowSeconds: 0,
              selectPolicy: 'Max',
              policies: [
                { type: 'Percent', value: 100, periodSeconds: 15 },
                { type: 'Pods', value: 2, periodSeconds: 15 },
              ],
            },
            scaleDown: { stabilizationWindowSeconds: 120, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
          },
        },
      },
      parent,
    );

    new k8s.policy.v1.PodDisruptionBudget(
      name,
      { metadata, spec: { minAvailable: 1, selector: { matchLabels: args.labels.selector } } },
      parent,
    );

    this.registerOutputs({ serviceName: this.serviceName, nodePort: this.nodePort, deploymentName: this.deployment.metadata.name });
  }
}
