/**
 * Follows the log of every pod of the Service as pods come and go: a stream per pod once its
 * container has started, ended when the pod goes, opened again when it ends while the pod stays
 * (a container restart). The API server is asked for timestamps so that a reopened stream starts
 * exactly after the last line shown (no line twice, none lost).
 */
import http from 'node:http';
import https from 'node:https';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import type { PodInfo, PodSet } from './pods';

/** Opens the follow stream of a pod's log, lines prefixed with the kubelet's RFC 3339 timestamp. */
export type OpenLog = (pod: PodInfo, sinceTime: string | undefined, signal: AbortSignal) => Promise<Readable>;

/** An RFC 3339 timestamp that sorts as text: the kubelet trims trailing zeros of the nanoseconds. */
export function sortableStamp(stamp: string): string {
  const match = /^(.+T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(stamp);
  return match ? `${match[1]}.${(match[2] ?? '').padEnd(9, '0')}${match[3]}` : stamp;
}

export class LogFollower {
  private readonly following = new Map<string, AbortController>();
  private readonly lastStamp = new Map<string, string>();
  private stopped = false;
  private readonly onChange = () => this.sync();

  constructor(private readonly options: { pods: PodSet; open: OpenLog; print: (pod: string, line: string) => void; retryMs?: number }) {}

  start(): void {
    this.options.pods.on('change', this.onChange);
    this.sync();
  }

  stop(): void {
    this.stopped = true;
    this.options.pods.off('change', this.onChange);
    for (const controller of this.following.values()) controller.abort();
    this.following.clear();
  }

  private sync(): void {
    if (this.stopped) return;
    const pods = this.options.pods;
    for (const pod of pods.list()) if (pod.started && !this.following.has(pod.name)) void this.follow(pod.name);
    // A pod that is gone: its stream ends with its container; stop asking for it.
    for (const [name, controller] of this.following) {
      if (!pods.get(name)) {
        controller.abort();
        this.following.delete(name);
        this.lastStamp.delete(name);
      }
    }
  }

  private async follow(name: string): Promise<void> {
    const controller = new AbortController();
    this.following.set(name, controller);
    while (!controller.signal.aborted && !this.stopped) {
      const pod = this.options.pods.get(name);
      if (!pod) break;
      try {
        const stream = await this.options.open(pod, this.lastStamp.get(name), controller.signal);
        await this.read(name, stream);
      } catch {
        // Not streamable yet or any more (container waiting, pod going): asked again below while the pod exists.
      }
      const now = this.options.pods.get(name);
      // Its container has ended and the pod is going (draining done): nothing more will come.
      if (!now || (now.deleting && !now.ready)) break;
      await new Promise((resolve) => setTimeout(resolve, this.options.retryMs ?? 1000));
    }
    if (this.following.get(name) === controller) this.following.delete(name);
  }

  private async read(name: string, stream: Readable): Promise<void> {
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    stream.on('error', () => lines.close());
    const last = this.lastStamp.get(name);
    for await (const raw of lines) {
      const space = raw.indexOf(' ');
      const stamp = space > 0 ? sortableStamp(raw.slice(0, space)) : '';
      // sinceTime is inclusive (and to the second on some kubelets): skip what was already shown.
      if (last !== undefined && stamp !== '' && stamp <= last) continue;
      if (stamp) this.lastStamp.set(name, stamp);
      this.options.print(name, space > 0 ? raw.slice(space + 1) : raw);
    }
  }
}

/** OpenLog through the API server (GET …/pods/<pod>/log?follow=true&timestamps=true), with the kubeconfig's credentials. */
export function apiServerLogs(kc: KubeConfig, namespace: string): OpenLog {
  return async (pod, sinceTime, signal) => {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error('no cluster in the kubeconfig');
    const url = new URL(`${server}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod.name)}/log`);
    url.searchParams.set('container', pod.container);
    url.searchParams.set('follow', 'true');
    url.searchParams.set('timestamps', 'true');
    if (sinceTime) url.searchParams.set('sinceTime', sinceTime);
    const options: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(options);
    const agent = options.agent as http.Agent | undefined;
    return new Promise<Readable>((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).get(url, { ...options, signal }, (response) => {
        response.on('close', () => agent?.destroy());
        if (response.statusCode === 200) return resolve(response);
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => reject(new Error(`log of ${pod.name}: ${response.statusCode} ${body.slice(0, 200)}`)));
      });
      request.on('error', (error) => {
        agent?.destroy();
        reject(error);
      });
    });
  };
}
