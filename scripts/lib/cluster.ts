/**
 * Reads the data service's HPA and Deployment through the Kubernetes API
 * (@kubernetes/client-node), for the load tool's live view.
 */
import type { KubeConfig } from '@kubernetes/client-node';

export interface ScaleSample {
  /** Ready pods of the Deployment. */
  ready: number;
  /** Pods the HPA currently runs and wants. */
  current: number;
  desired: number;
  /** Average CPU utilisation (% of the request) the HPA sees; undefined until metrics-server reports. */
  cpuPercent?: number;
  /** Why the HPA cannot scale right now (its ScalingActive condition), e.g. no metrics-server. */
  problem?: string;
}

export interface ScaleWatcher {
  sample(): Promise<ScaleSample>;
  describe: string;
}

/**
 * Connects to `context` (default: the kubeconfig's current one) and checks the
 * HPA exists. Rejects with a plain-language reason when no cluster is reachable.
 */
export async function connectScaleWatcher(options: { context?: string; namespace: string; name: string; timeoutMs?: number }): Promise<ScaleWatcher> {
  const k8s = await import('@kubernetes/client-node');
  const kc: KubeConfig = new k8s.KubeConfig();
  kc.loadFromDefault();
  if (options.context) {
    if (!kc.getContextObject(options.context)) throw new Error(`kube context "${options.context}" is not in the kubeconfig`);
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) throw new Error('no kubeconfig or no current context');
  const autoscaling = kc.makeApiClient(k8s.AutoscalingV2Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const { name, namespace } = options;

  const withTimeout = <T>(work: Promise<T>): Promise<T> =>
    Promise.race([work, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('the API server did not answer in time')), options.timeoutMs ?? 4000))]);

  const sample = async (): Promise<ScaleSample> => {
    const [hpa, deployment] = await withTimeout(
      Promise.all([autoscaling.readNamespacedHorizontalPodAutoscaler({ name, namespace }), apps.readNamespacedDeployment({ name, namespace })]),
    );
    const cpu = hpa.status?.currentMetrics?.find((metric) => metric.resource?.name === 'cpu')?.resource?.current.averageUtilization;
    const inactive = hpa.status?.conditions?.find((condition) => condition.type === 'ScalingActive' && condition.status === 'False');
    return {
      ready: deployment.status?.readyReplicas ?? 0,
      current: hpa.status?.currentReplicas ?? 0,
      desired: hpa.status?.desiredReplicas ?? 0,
      cpuPercent: cpu ?? undefined,
      problem: inactive?.reason,
    };
  };
  await sample(); // fail now, clearly, rather than on every poll
  return { sample, describe: `HPA ${namespace}/${name} on ${kc.getCurrentContext()} (${kc.getCurrentCluster()?.server})` };
}
