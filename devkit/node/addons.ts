/**
 * The cluster addons Minikube starts with, as pods on the node, from images made
 * here (scratch images of the binaries built in binaries.ts):
 *  - CoreDNS as kubeadm deploys it: Deployment `coredns`, Service `kube-dns` at
 *    the kubelet's clusterDNS address, the Corefile of kubeadm/Minikube;
 *  - metrics-server as Minikube's addon runs it (--kubelet-insecure-tls: the
 *    kubelet's serving certificate is self-signed), behind APIService
 *    v1beta1.metrics.k8s.io, which the HPA reads (same flags, scraping every 60 s
 *    unless told otherwise);
 *  - StorageClass `standard`, the default, provisioned by provisioner.ts under the
 *    name Minikube's storage-provisioner uses.
 */
import { CLUSTER } from './config';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const IMAGES = {
  pause: 'localhost/koa-node/pause:3.10',
  coredns: 'localhost/koa-node/coredns:v1.12.1',
  metricsServer: 'localhost/koa-node/metrics-server:v0.8.0',
  nettool: 'localhost/koa-node/nettool:1',
} as const;

export const PROVISIONER = 'k8s.io/minikube-hostpath';

const COREFILE = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes ${CLUSTER.domain} in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`;

const system = (kind: string, apiVersion: string, name: string, rest: Manifest = {}): Manifest => {
  const { metadata, ...body } = rest;
  return { apiVersion, kind, metadata: { name, namespace: 'kube-system', ...metadata }, ...body };
};
const cluster = (kind: string, name: string, rest: Manifest): Manifest => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: { name }, ...rest });
const bind = (kind: 'ClusterRoleBinding' | 'RoleBinding', name: string, role: { kind: string; name: string }, account: string, namespace?: string): Manifest => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind,
  metadata: namespace ? { name, namespace } : { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...role },
  subjects: [{ kind: 'ServiceAccount', name: account, namespace: 'kube-system' }],
});

export function corednsManifests(): Manifest[] {
  const labels = { 'k8s-app': 'kube-dns' };
  return [
    system('ServiceAccount', 'v1', 'coredns'),
    cluster('ClusterRole', 'system:coredns', {
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    }),
    bind('ClusterRoleBinding', 'system:coredns', { kind: 'ClusterRole', name: 'system:coredns' }, 'coredns'),
    system('ConfigMap', 'v1', 'coredns', { data: { Corefile: COREFILE } }),
    system('Deployment', 'apps/v1', 'coredns', {
      metadata: { labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            priorityClassName: 'system-cluster-critical',
            dnsPolicy: 'Default',
            tolerations: [{ key: 'CriticalAddonsOnly', operator: 'Exists' }, { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }],
            containers: [
              {
                name: 'coredns',
                image: IMAGES.coredns,
                imagePullPolicy: 'Never',
                args: ['-conf', '/etc/coredns/Corefile'],
                resources: { requests: { cpu: '100m', memory: '70Mi' }, limits: { memory: '170Mi' } },
                ports: [
                  { name: 'dns', containerPort: 53, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                  { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
                ],
                volumeMounts: [{ name: 'config-volume', mountPath: '/etc/coredns', readOnly: true }],
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, initialDelaySeconds: 60, timeoutSeconds: 5, failureThreshold: 5 },
                readinessProbe: { httpGet: { path: '/ready', port: 8181 } },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] }, readOnlyRootFilesystem: true },
              },
            ],
            volumes: [{ name: 'config-volume', configMap: { name: 'coredns', items: [{ key: 'Corefile', path: 'Corefile' }] } }],
          },
        },
      },
    }),
    system('Service', 'v1', 'kube-dns', {
      metadata: { labels: { ...labels, 'kubernetes.io/name': 'CoreDNS' } },
      spec: {
        selector: labels,
        clusterIP: CLUSTER.dnsIp,
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP' },
          { name: 'metrics', port: 9153, protocol: 'TCP' },
        ],
      },
    }),
  ];
}

/** `resolution`: how often metrics-server scrapes the kubelet; Minikube's addon uses 60s (upstream's default is 15s). */
export function metricsServerManifests(resolution = '60s'): Manifest[] {
  const labels = { 'k8s-app': 'metrics-server' };
  return [
    system('ServiceAccount', 'v1', 'metrics-server'),
    cluster('ClusterRole', 'system:aggregated-metrics-reader', {
      metadata: { name: 'system:aggregated-metrics-reader', labels: { 'rbac.authorization.k8s.io/aggregate-to-admin': 'true', 'rbac.authorization.k8s.io/aggregate-to-edit': 'true', 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
      rules: [{ apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
    }),
    cluster('ClusterRole', 'system:metrics-server', {
      rules: [
        { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    }),
    bind('RoleBinding', 'metrics-server-auth-reader', { kind: 'Role', name: 'extension-apiserver-authentication-reader' }, 'metrics-server', 'kube-system'),
    bind('ClusterRoleBinding', 'metrics-server:system:auth-delegator', { kind: 'ClusterRole', name: 'system:auth-delegator' }, 'metrics-server'),
    bind('ClusterRoleBinding', 'system:metrics-server', { kind: 'ClusterRole', name: 'system:metrics-server' }, 'metrics-server'),
    system('Service', 'v1', 'metrics-server', { metadata: { labels }, spec: { selector: labels, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 'https' }] } }),
    system('Deployment', 'apps/v1', 'metrics-server', {
      metadata: { labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'metrics-server',
            priorityClassName: 'system-cluster-critical',
            containers: [
              {
                name: 'metrics-server',
                image: IMAGES.metricsServer,
                imagePullPolicy: 'Never',
                args: ['--cert-dir=/tmp', '--secure-port=4443', '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname', '--kubelet-use-node-status-port', `--metric-resolution=${resolution}`, '--kubelet-insecure-tls'],
                ports: [{ name: 'https', containerPort: 4443, protocol: 'TCP' }],
                resources: { requests: { cpu: '100m', memory: '200Mi' } },
                readinessProbe: { httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 3 },
                livenessProbe: { httpGet: { path: '/livez', port: 'https', scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 3 },
                securityContext: { readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                volumeMounts: [{ name: 'tmp-dir', mountPath: '/tmp' }],
              },
            ],
            volumes: [{ name: 'tmp-dir', emptyDir: {} }],
          },
        },
      },
    }),
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: 'v1beta1.metrics.k8s.io', labels },
      spec: { service: { name: 'metrics-server', namespace: 'kube-system' }, group: 'metrics.k8s.io', version: 'v1beta1', insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100 },
    },
  ];
}

export function storageClassManifest(): Manifest {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' }, labels: { 'addonmanager.kubernetes.io/mode': 'EnsureExists' } },
    provisioner: PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
}
