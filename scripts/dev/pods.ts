/**
 * The Service's pods as they come and go, from one watch on the API server (client-node's informer:
 * a list, then a watch that relists on its own after a lost connection). The log streams and the
 * port-forward both read this one set, so they agree about which pods exist and which are Ready.
 */
import { EventEmitter } from 'node:events';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';

export interface PodInfo {
  name: string;
  /** Ready condition True and not being deleted: may take new connections. */
  ready: boolean;
  /** Its (first) container has started, so it has a log to follow. */
  started: boolean;
  /** deletionTimestamp set: draining, takes no new connections. */
  deleting: boolean;
  /** The image reference of its first container, as the Deployment gave it. */
  image: string;
  /** creationTimestamp (ms): the newest pods belong to the newest rollout. */
  created: number;
  /** pod-template-hash: which ReplicaSet (rollout) it belongs to. */
  rollout: string;
  /** The container port named "http" (the Service's targetPort), else the first. */
  port: number;
  /** Its first container's name: the service's, whose log is followed. */
  container: string;
}

export function podInfo(pod: V1Pod): PodInfo {
  const container = pod.spec?.containers?.[0];
  const deleting = Boolean(pod.metadata?.deletionTimestamp);
  const readyCondition = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const status = pod.status?.containerStatuses?.find((s) => s.name === container?.name);
  const ports = container?.ports ?? [];
  return {
    name: pod.metadata?.name ?? '',
    ready: readyCondition && !deleting && pod.status?.phase === 'Running',
    started: Boolean(status?.state?.running || status?.state?.terminated || status?.lastState?.terminated),
    deleting,
    image: container?.image ?? '',
    created: new Date(pod.metadata?.creationTimestamp ?? 0).getTime(),
    rollout: pod.metadata?.labels?.['pod-template-hash'] ?? '',
    port: (ports.find((p) => p.name === 'http') ?? ports[0])?.containerPort ?? 0,
    container: container?.name ?? '',
  };
}

/** The current pods; emits 'change' after every change. */
export class PodSet extends EventEmitter {
  private readonly pods = new Map<string, PodInfo>();

  set(pod: PodInfo): void {
    this.pods.set(pod.name, pod);
    this.emit('change');
  }

  remove(name: string): void {
    if (this.pods.delete(name)) this.emit('change');
  }

  get(name: string): PodInfo | undefined {
    return this.pods.get(name);
  }

  list(): PodInfo[] {
    return [...this.pods.values()];
  }

  /** Resolves with the first pod matching `predicate` (now or later), or undefined after timeoutMs or on abort. */
  waitFor(predicate: (pod: PodInfo) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<PodInfo | undefined> {
    return new Promise((resolve) => {
      const check = () => {
        const found = this.list().find(predicate);
        if (found) done(found);
      };
      const done = (pod: PodInfo | undefined) => {
        clearTimeout(timer);
        this.off('change', check);
        signal?.removeEventListener('abort', aborted);
        resolve(pod);
      };
      const aborted = () => done(undefined);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.on('change', check);
      signal?.addEventListener('abort', aborted);
      check();
    });
  }
}

/** Keeps `set` equal to the pods matching `labelSelector` in `namespace`. */
export async function watchPods(kc: KubeConfig, namespace: string, labelSelector: string, set: PodSet, log: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace, labelSelector }), labelSelector);
  const update = (pod: V1Pod) => set.set(podInfo(pod));
  informer.on('add', update);
  informer.on('update', update);
  informer.on('delete', (pod) => set.remove(pod.metadata?.name ?? ''));
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  // The informer stops on an error (the API server restarting, a network blip): start it again.
  const again = (error: unknown) => {
    if (stopped) return;
    log(`pod watch interrupted (${(error as Error)?.message ?? String(error)}); watching again in 1 s`);
    clearTimeout(retry);
    retry = setTimeout(() => void informer.start().catch(again), 1000);
  };
  informer.on('error', again);
  await informer.start();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(retry);
      await informer.stop();
    },
  };
}
