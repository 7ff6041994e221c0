/**
 * `npm run cluster:local`: a local Kubernetes control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) on loopback, in the foreground, built
 * from the Go module proxy on first use. Prints a kubeconfig path; Ctrl-C stops
 * it and deletes its state.
 *
 * By default kwok fakes one node (pods turn Ready, no container runs). With
 * `--node` a real node joins instead (devkit/node: containerd, kubelet, kube-proxy,
 * CoreDNS, metrics-server, StorageClass `standard`); it needs root.
 */
import { CONTEXT, startControlPlane } from '../control-plane';
import { startNodeCluster } from '../node/node';

async function main(): Promise<void> {
  const realNode = process.argv.includes('--node');
  const cluster = realNode ? await startNodeCluster() : { plane: await startControlPlane(), node: undefined };
  const { plane } = cluster;
  console.log(`control plane at ${plane.server}`);
  if (cluster.node) console.log(`node ${cluster.node.name} at ${cluster.node.nodeIp} (NodePorts answer there from this host); logs in ${cluster.node.dir}/logs`);
  console.log(`export KUBECONFIG=${plane.kubeconfig}   # context ${CONTEXT}`);
  console.log('Ctrl-C stops it.');
  const stop = () => void ('stop' in cluster ? cluster.stop() : plane.stop()).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
