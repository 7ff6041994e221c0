/**
 * What the end-to-end test needs before it may start, checked in seconds:
 * a Pulumi CLI and a reachable cluster for the context. Anything missing is a
 * failure with the fix in its message, never a skip and never a pass.
 */
import { execFileSync } from 'node:child_process';

export function pulumiVersion(): string {
  try {
    return execFileSync('pulumi', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).trim();
  } catch {
    throw new Error(
      'the end-to-end test needs the Pulumi CLI on PATH (3.248 or later): install it from https://www.pulumi.com/docs/install/ and run `npm run test:e2e` again',
    );
  }
}

export async function assertClusterReachable(context: string): Promise<string> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (error) {
    throw new Error(`no kubeconfig could be read (${(error as Error).message}): run \`minikube start\``);
  }
  if (!kc.getContextObject(context)) {
    throw new Error(`kube context "${context}" is not in the kubeconfig: run \`minikube start\` (or set E2E_KUBE_CONTEXT)`);
  }
  kc.setCurrentContext(context);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000));
  try {
    await Promise.race([core.listNamespace(), timeout]);
  } catch (error) {
    throw new Error(`the cluster of context "${context}" (${kc.getCurrentCluster()?.server}) is not reachable (${(error as Error).message}): run \`minikube start\``);
  }
  return kc.getCurrentCluster()?.server ?? context;
}
