/**
 * The node's configuration files, as issue 11 found this machine needs them:
 * containerd's CRI with runc (crun fails on this cgroup layout), the cgroupfs
 * driver (no systemd), restrict_oom_score_adj (no CAP_SYS_RESOURCE) and a sandbox
 * image made here; a bridge CNI network; a KubeletConfiguration with cgroupfs, a
 * cgroupRoot of our own, swap tolerated and the kernel defaults not enforced; a
 * kube-proxy in iptables mode that leaves the host-wide conntrack settings alone.
 */
import { stringify } from 'yaml';

export const CLUSTER = {
  domain: 'cluster.local',
  dnsIp: '10.96.0.10',
  podCidr: '10.244.0.0/24',
  /** Pods reach the outside (the API server on the host) through this address of the bridge. */
  bridge: 'cni0',
} as const;

export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';

export function containerdConfig(options: { sandboxImage: string; cniConfDir: string }): string {
  return `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
# "opt" would create /opt/containerd on the host; the others are snapshotters this node does not use.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${CONTAINERD_SOCKET}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${options.sandboxImage}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${options.cniConfDir}"
`;
}

export function cniConfig(): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'koa-node',
      plugins: [
        {
          type: 'bridge',
          bridge: CLUSTER.bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: CLUSTER.podCidr }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export function kubeletConfig(options: { cgroupRoot: string; clientCaFile: string; nodeIp: string; resolvConf: string }): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: options.cgroupRoot,
    failSwapOn: false,
    protectKernelDefaults: false,
    containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
    clusterDNS: [CLUSTER.dnsIp],
    clusterDomain: CLUSTER.domain,
    resolvConf: options.resolvConf,
    address: options.nodeIp,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: options.clientCaFile } },
    authorization: { mode: 'Webhook' },
    rotateCertificates: false,
    serializeImagePulls: false,
    // This machine's disk may be fuller than a real node's: do not taint the node for it.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // The smoke test and the stack's rollout want status changes seen promptly.
    nodeStatusReportFrequency: '10s',
    syncFrequency: '10s',
  });
}

export function kubeProxyConfig(options: { kubeconfig: string; nodeName: string }): string {
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: options.kubeconfig },
    hostnameOverride: options.nodeName,
    clusterCIDR: CLUSTER.podCidr,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // 0: keep the host's (global) nf_conntrack_max and the timeouts as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  });
}

/** A kubeconfig for the node's agents: the API server through the relay on the host side of the veth. */
export function nodeKubeconfig(server: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'node', user: { token } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'node' } }],
    'current-context': 'local',
  });
}
