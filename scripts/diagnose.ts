/**
 * `npm run diagnose` (and `npm run up` by itself when `pulumi up` fails): what the failing pods say.
 * For every pod of the stack that is not Ready (and every failed Job pod): its containers' states, its
 * recent events and the last lines of its log (the previous container's too, after a crash), then the
 * exact kubectl commands to look further. The Kubernetes provider's own message ("timed out waiting
 * for the condition", "containers with unready status") says that a rollout failed; this says why.
 * And the scheduled backups: each CronJob's schedule, last run and last success, and its failed Jobs
 * (their pods' logs are among the failed pods above).
 *
 *   npm run diagnose -- [--context minikube] [--namespace koa-mongodb] [--lines 15]
 */
import { BatchV1Api, CoreV1Api, KubeConfig, type CoreV1Event, type V1CronJob, type V1Job, type V1Pod } from '@kubernetes/client-node';
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
  await backups(config.makeApiClient(BatchV1Api));
  say();
  say(`all events:     ${kubectl} get events --sort-by=.lastTimestamp`);
  say(`the rollout:    ${kubectl} rollout status deployment/data-service`);
}

const when = (time: Date | string | undefined) => {
  if (time === undefined) return 'never';
  const at = new Date(time);
  const minutes = Math.round((Date.now() - at.getTime()) / 60_000);
  return `${at.toISOString().replace(/\.\d{3}Z$/, 'Z')} (${minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`} ago)`;
};
const jobFailed = (job: V1Job) => job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');

/** The CronJobs (the scheduled backup): schedule, last run, last success, and the failed Jobs they kept. */
async function backups(batch: BatchV1Api): Promise<void> {
  const cronJobs: V1CronJob[] = (await batch.listNamespacedCronJob({ namespace })).items;
  if (cronJobs.length === 0) return;
  const jobs = (await batch.listNamespacedJob({ namespace })).items;
  for (const cron of cronJobs) {
    const name = cron.metadata!.name!;
    const own = jobs
      .filter((job) => job.metadata?.ownerReferences?.some((owner) => owner.kind === 'CronJob' && owner.name === name))
      .sort((a, b) => new Date(String(a.metadata?.creationTimestamp)).getTime() - new Date(String(b.metadata?.creationTimestamp)).getTime());
    const failed = own.filter(jobFailed);
    const last = own.at(-1);
    const lastState = !last ? 'none kept' : jobFailed(last) ? 'FAILED' : last.status?.succeeded ? 'succeeded' : 'running';
    say();
    say(`cronjob ${name}: schedule "${cron.spec?.schedule}"${cron.spec?.suspend ? ', SUSPENDED' : ''}; last scheduled ${when(cron.status?.lastScheduleTime)}, last success ${when(cron.status?.lastSuccessfulTime)}; last run: ${last ? `${last.metadata!.name} ${lastState}` : lastState}`);
    for (const job of failed) {
      const condition = jobFailed(job)!;
      say(`  job ${job.metadata!.name} failed ${when(condition.lastTransitionTime)}: ${condition.reason ?? ''} ${condition.message ?? ''}`.trimEnd());
      say(`    look further: ${kubectl} logs job/${job.metadata!.name}`);
    }
    say(` backups:        npm run backup -- --list    (run one now: ${kubectl} create job --from=cronjob/${name} backup-now)`);
  }
}

main().catch((error: Error) => {
  say(`up: diagnosis failed (${error.message.split('\n')[0]}); look yourself: ${kubectl} get pods,events`);
  process.exitCode = 1;
});
