/**
 * What a failed cluster test prints: the namespace's pods (phase, node, conditions, container states),
 * its events in time order, and the tail of each control-plane daemon's log. A flake that cannot be
 * reproduced is then at least described (one CI run saw a rollout's new pod never turn Ready).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { KubeClient, Manifest } from './kube';

export async function namespaceSnapshot(api: KubeClient, namespace: string, logDir?: string, daemons = ['kwok', 'kube-scheduler', 'kube-controller-manager']): Promise<string> {
  const lines: string[] = [`--- pods in ${namespace} ---`];
  const pods = await api.list('v1', 'Pod', namespace).catch((e: Error) => [{ error: e.message }] as Manifest[]);
  for (const pod of pods) {
    if (pod.error) { lines.push(`  (could not list: ${pod.error})`); continue; }
    const conditions = (pod.status?.conditions ?? []).map((c: Manifest) => `${c.type}=${c.status}${c.reason ? `(${c.reason})` : ''}`).join(' ');
    const states = (pod.status?.containerStatuses ?? []).map((s: Manifest) => `${s.name}:${Object.keys(s.state ?? {})[0] ?? '?'}${s.ready ? '/ready' : ''}`).join(' ');
    lines.push(`  ${pod.metadata.name} ${pod.status?.phase} node=${pod.spec?.nodeName ?? '-'}${pod.metadata.deletionTimestamp ? ' terminating' : ''} ${conditions} ${states}`);
  }
  lines.push(`--- events in ${namespace} ---`);
  const events = await api.list('v1', 'Event', namespace).catch(() => [] as Manifest[]);
  const when = (e: Manifest) => String(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? '');
  for (const event of events.sort((a, b) => when(a).localeCompare(when(b))).slice(-40)) {
    lines.push(`  ${when(event)} ${event.involvedObject?.kind}/${event.involvedObject?.name} ${event.reason}: ${event.message}`);
  }
  for (const daemon of logDir ? daemons : []) {
    const file = path.join(logDir!, `${daemon}.log`);
    if (!existsSync(file)) continue;
    lines.push(`--- ${daemon} (last 15 lines) ---`, ...readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).map((l) => `  ${l}`));
  }
  return lines.join('\n');
}
