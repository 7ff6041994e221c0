/**
 * `npm run diagnose` (and `npm run up` by itself when `pulumi up` fails): what the failing pods say.
 * For every pod of the stack that is not Ready (and every failed Job pod): its containers' states, its
 * recent events and the last lines of its log (the previous container's too, after a crash), then the
 * exact kubectl commands to look further. The Kubernetes provider's own message ("timed out waiting
 * for the condition", "containers with unready status") says that a rollout failed; this says why.
 *
 *   npm run diagnose -- [--context minikube] [--namespace koa-mongodb] [--lines 15]
 */
import { CoreV1Api, KubeConfig, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    context: { type: 'string', default: process.env.MINIKUBE_PROFILE ?? 'minikube' },
    namespace: { type: 'string', default: 'koa-mongodb' },
    lines: { type: 'string', default: '15' },
  },
});
const context = values.context!;
const namespace = values.namespace!;
const lines = Number(values.lines);
const kubectl = `kubectl --context ${context} -n ${namespace}`;
const say = (line = '') => process.stdout.write(`${line}\n`);

const isReady = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const isJobPod = (pod: V1Pod) => pod.metadata?.ownerReferences?.some((owner) => owner.kind === 'Job') ?? false;
/** Pods worth a look: not Ready while they should be, or a Job's pod that failed. */
const failing = (pod: V1Pod) => (isJobPod(pod) ? pod.status?.phase === 'Failed' : !isReady(pod) && pod.status?.phase !== 'Succeeded');

function containerLines(pod: V1Pod): string[] {
  return (pod.status?.containerStatuses ?? []).concat(pod.status?.initContainerStatuses ?? []).map((status) => {
    const state = status.state?.waiting
      ? `waiting: ${status.state.waiting.reason ?? ''} ${status.state.waiting.message ?? ''}`
      : status.state?.terminated
        ? `terminated: exit ${status.state.terminated.exitCode} ${status.state.terminated.reason ?? ''}`
        : 'running';
    const last = status.lastState?.terminated ? `; last exit ${status.lastState.terminated.exitCode} (${status.lastState.terminated.reason ?? ''})` : '';
    return `  container ${status.name}: ${state.trim()}, ${status.restartCount} restarts${last}`;
  });
}

const eventTime = (event: CoreV1Event) => new Date(String(event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? 0)).getTime();
const eventLine = (event: CoreV1Event) =>
  `  ${new Date(eventTime(event)).toISOString().slice(11, 19)} ${event.type} ${event.reason}: ${(event.message ?? '').trim()}${(event.count ?? 1) > 1 ? ` (x${event.count})` : ''}`;

async function main(): Promise<void> {
  const config = new KubeConfig();
  config.loadFromDefault();
  config.setCurrentContext(context);
  const core = config.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace })).items;
  const events = (await core.listNamespacedEvent({ namespace })).items.sort((a, b) => eventTime(a) - eventTime(b));
  const bad = pods.filter(failing);
  say(`up: diagnosis of namespace ${namespace} (context ${context}): ${bad.length} of ${pods.length} pods not Ready or failed`);
  if (bad.length === 0) {
    const warnings = events.filter((event) => event.type === 'Warning').slice(-10);
    if (warnings.length) say('recent warnings:');
    for (const event of warnings) say(`${eventLine(event)} [${event.involvedObject.kind}/${event.involvedObject.name}]`);
  }
  for (const pod of bad) {
    const name = pod.metadata!.name!;
    say();
    say(`pod ${name} (${pod.status?.phase}${pod.status?.reason ? `, ${pod.status.reason}` : ''}), image ${pod.spec?.containers[0]?.image}`);
    for (const line of containerLines(pod)) say(line);
    const own = events.filter((event) => event.involvedObject.name === name).slice(-8);
    if (own.length) say(' events:');
    for (const event of own) say(eventLine(event));
    for (const status of pod.status?.containerStatuses ?? []) {
      for (const previous of status.restartCount > 0 ? [false, true] : [false]) {
        const text = await core.readNamespacedPodLog({ name, namespace, container: status.name, tailLines: lines, previous }).catch(() => '');
        if (!String(text).trim()) continue;
        say(` last ${lines} log lines of ${status.name}${previous ? ' (the container before the last restart)' : ''}:`);
        for (const line of String(text).trimEnd().split('\n')) say(`  | ${line}`);
      }
    }
    say(` look further:  ${kubectl} describe pod ${name}`);
    say(`                ${kubectl} logs ${name} --previous`);
  }
  say();
  say(`all events:     ${kubectl} get events --sort-by=.lastTimestamp`);
  say(`the rollout:    ${kubectl} rollout status deployment/data-service`);
}

main().catch((error: Error) => {
  say(`up: diagnosis failed (${error.message.split('\n')[0]}); look yourself: ${kubectl} get pods,events`);
  process.exitCode = 1;
});
