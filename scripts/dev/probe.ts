/**
 * "First new answer": the moment the change is served through the local port. Once a pod of the
 * new version is Ready, GET / goes through the forward every 100 ms until a 2xx answer comes from a
 * pod of the new version (the forward says which pod each connection went to).
 */
import http from 'node:http';
import type { Forward } from './forward';
import type { PodInfo, PodSet } from './pods';

export interface ProbeOptions {
  port: number;
  forward: Pick<Forward, 'podFor'>;
  pods: PodSet;
  /** Whether a pod runs the new version (its image differs from the one before the change). */
  isNew: (pod: PodInfo) => boolean;
  signal: AbortSignal;
  path?: string;
  intervalMs?: number;
}

/** One GET through the local port: its status and the pod that answered it. */
export function probeOnce(port: number, forward: Pick<Forward, 'podFor'>, path = '/'): Promise<{ status: number; pod?: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (response) => {
      // Asked while the connection is still open: the forward forgets it when it closes.
      const pod = forward.podFor(request.socket?.localPort ?? -1);
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, pod }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('no answer in 5 s')));
    request.on('error', reject);
  });
}

/** Resolves with Date.now() of the first answer from a new pod, or undefined when aborted. */
export async function firstNewAnswer(options: ProbeOptions): Promise<{ at: number; pod: string } | undefined> {
  const { pods, isNew, signal } = options;
  while (!signal.aborted) {
    const ready = await pods.waitFor((pod) => pod.ready && isNew(pod), 3_600_000, signal);
    if (!ready) return undefined;
    try {
      const { status, pod } = await probeOnce(options.port, options.forward, options.path);
      const served = pod ? pods.get(pod) : undefined;
      if (status >= 200 && status < 300 && served && isNew(served)) return { at: Date.now(), pod: served.name };
    } catch {
      // Not through yet (the pod just went Ready): again in a moment.
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
  return undefined;
}
