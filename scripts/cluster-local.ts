/**
 * `npm run cluster:local`: a local Kubernetes control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) on loopback, in the foreground, built
 * from the Go module proxy on first use. Prints a kubeconfig path; Ctrl-C stops
 * it and deletes its state.
 */
import { CONTEXT, startControlPlane } from '../devkit/control-plane';

async function main(): Promise<void> {
  const plane = await startControlPlane();
  console.log(`control plane at ${plane.server}`);
  console.log(`export KUBECONFIG=${plane.kubeconfig}   # context ${CONTEXT}`);
  console.log('Ctrl-C stops it.');
  const stop = () => void plane.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
