/**
 * The node's NetworkPolicy enforcer: kube-router's network policy controller
 * (kube-router v2.1.0, the upstream command from the Go module proxy, built by
 * devkit/go/netpol), run with --run-firewall only: no BGP routing, no IPVS
 * service proxy (kube-proxy keeps that job). It watches pods, namespaces and
 * NetworkPolicies through the node's kubeconfig and turns them into iptables
 * chains and ipsets in the node's network namespace: traffic to a pod that a
 * policy selects and no rule admits is REJECTed, as with Calico on Minikube.
 *
 * Not sigs.k8s.io/kube-network-policies v0.8.0: it hands packets to user space
 * with nftables' native `queue` statement, and this machine's kernel is built
 * without CONFIG_NFT_QUEUE (with no loadable modules), so its first nftables
 * transaction fails with ENOENT (devkit/go/netpol/tools.go).
 */
import path from 'node:path';
import { ensureGoTool } from '../go-build';
import { GO_MODULES, cacheEntry } from '../paths';

export const KUBE_ROUTER_VERSION = 'v2.1.0';
/** The control plane's --service-cluster-ip-range (devkit/control-plane.ts). */
export const SERVICE_CIDR = '10.96.0.0/16';
/** kube-router's health endpoint (its default port), inside the node's network namespace. */
export const NETPOL_HEALTH_PORT = 20244;

/** Builds kube-router once per machine (cold: minutes) and returns its path. */
export function ensureNetpolBinary(log: (line: string) => void = console.log): string {
  const dir = cacheEntry('netpol', ['netpol']);
  const [binary] = ensureGoTool(
    {
      what: `kube-router ${KUBE_ROUTER_VERSION} (devkit/go/netpol)`,
      firstBuild: 'a few minutes',
      into: { dir, names: ['kube-router'] },
      build: {
        cwd: path.join(GO_MODULES, 'netpol'),
        packages: ['github.com/cloudnativelabs/kube-router/v2/cmd/kube-router'],
        ldflags: `-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${KUBE_ROUTER_VERSION}`,
      },
    },
    log,
  );
  return binary;
}

/** kube-router's command line for the node: the network policy controller alone. */
export function netpolArgs(options: { kubeconfig: string; nodeName: string; serviceCidr: string }): string[] {
  return [
    '--run-firewall=true',
    '--run-router=false',
    '--run-service-proxy=false',
    `--kubeconfig=${options.kubeconfig}`,
    `--hostname-override=${options.nodeName}`,
    // Traffic to Service addresses is let through before DNAT decides the pod, as kube-router documents.
    `--service-cluster-ip-range=${options.serviceCidr}`,
    `--health-port=${NETPOL_HEALTH_PORT}`,
    '--v=1',
  ];
}
