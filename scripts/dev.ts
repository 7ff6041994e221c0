/**
 * `npm run dev`: the inner loop. Brings the stack up to date once (`npm run up -- --yes
 * --skip-preview`), then, until Ctrl-C:
 * - watches the image's build context in service/ and runs `pulumi up` for each change (edits
 *   made during an update make one next update);
 * - shows the log of every pod of the Service, prettified, following pods as rollouts replace them;
 * - keeps http://127.0.0.1:5000 (DEV_PORT) forwarded to the Service's Ready pods across rollouts;
 * - prints for each change what changed, the build and rollout times, and the time from the save
 *   to the first answer of the new version through the forward.
 * Ctrl-C leaves the stack running as it is and stops all of it: forward, log streams, watches.
 *
 * Environment: DEV_PORT (5000), PULUMI_STACK (dev), and those of `npm run up`.
 * Pieces: scripts/dev/ (watch, updates, pulumi, pods, logs, forward, probe, pretty).
 */
import path from 'node:path';
import { PassThrough, Duplex } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { contextHash } from '../components/buildContext';
import { Forward, Unreachable, type Dial } from './dev/forward';
import { LogFollower, apiServerLogs } from './dev/logs';
import { PodSet, watchPods } from './dev/pods';
import { prettyLine } from './dev/pretty';
import { firstNewAnswer } from './dev/probe';
import { openSession, pulumiUp, runUpScript, stackOutputs, stackValue, type Running, type Session } from './dev/pulumi';
import { UpdateQueue, type Batch } from './dev/updates';
import { watchBuildContext } from './dev/watch';

const root = process.cwd(); // npm runs scripts in the project's directory
const serviceDir = path.join(root, 'service');
const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const bold = (text: string) => (color ? `\x1b[1m${text}\x1b[0m` : text);
const dim = (text: string) => (color ? `\x1b[2m${text}\x1b[0m` : text);
const say = (line: string) => console.log(`${bold('dev:')} ${line}`);
const seconds = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
const hashNow = async (): Promise<string> => {
  // A file can vanish between the listing and the read (an editor's rename): read again.
  for (let attempt = 0; ; attempt += 1) {
    try {
      return contextHash(serviceDir);
    } catch (error) {
      if (attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
};

/** Dial for the forward: the API server's pod portforward (client-node over a WebSocket). */
async function apiServerDial(kc: KubeConfig, namespace: string): Promise<Dial> {
  const k8s = await import('@kubernetes/client-node');
  const portForward = new k8s.PortForward(kc);
  return async (pod) => {
    const fromPod = new PassThrough();
    const toPod = new PassThrough();
    const errors = new PassThrough();
    let socket: Awaited<ReturnType<typeof portForward.portForward>>;
    try {
      socket = await portForward.portForward(namespace, pod.name, [pod.port], fromPod, errors, toPod);
    } catch (error) {
      throw new Unreachable(`portforward to ${pod.name}: ${(error as Error).message ?? String(error)}`);
    }
    const ws = socket as unknown as { on(event: 'close', listener: () => void): void; close(): void };
    const tunnel = Duplex.from({ readable: fromPod, writable: toPod });
    // The kubelet reports on the error channel; "connect: connection refused" and the like mean
    // nothing reached the pod's process, so the forward may try another pod.
    errors.on('data', (chunk: Buffer) => {
      const message = chunk.toString().trim();
      if (message === '') return; // the channel's opening frame carries only the port number
      tunnel.destroy(/connect|dial|refused|no such|not found/i.test(message) ? new Unreachable(message) : new Error(message));
    });
    ws.on('close', () => fromPod.end());
    tunnel.on('close', () => ws.close());
    return tunnel;
  };
}

// What to stop and remove at the end, newest first; run on Ctrl-C and on a failure alike.
const cleanups: Array<() => unknown> = [];
const opened: { session?: Session } = {};
async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  opened.session?.close();
}

async function main(): Promise<void> {
  const stack = process.env.PULUMI_STACK ?? 'dev';
  const port = Number(process.env.DEV_PORT ?? 5000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`DEV_PORT=${process.env.DEV_PORT}: give a port number`);

  let stopping = false;
  let current: Running | undefined;
  // Ctrl-C: a running pulumi gets ONE interrupt (it finishes the step in progress and saves its
  // state; a second Ctrl-C is passed on and makes it stop at once), then everything of ours stops.
  const stop = async () => {
    if (stopping) {
      current?.interrupt();
      return;
    }
    stopping = true;
    say('stopping; the stack stays as it is');
    if (current) {
      say('waiting for pulumi to finish its current step (Ctrl-C again to stop it now)');
      current.interrupt();
      await current.done;
    }
    const cleaning = Date.now();
    await cleanUp();
    say(`stopped (${((Date.now() - cleaning) / 1000).toFixed(1)} s): forward, log streams and watches ended; the stack is running as it was`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  const s = await openSession(root, stack, say);
  opened.session = s;
  // What this first up deploys: the build context as it is now (a save during it is caught below).
  const startHash = await hashNow();
  say(`bringing stack ${stack} up to date first: npm run up -- --yes --skip-preview`);
  current = runUpScript(s, ['--yes', '--skip-preview']);
  const code = await current.done;
  current = undefined;
  if (stopping) return;
  if (code !== 0) {
    throw new Error(`npm run up failed (exit ${code}); fix what it says and run npm run dev again`);
  }

  const outputs = await stackOutputs(s);
  const context = String(outputs.kubeContext ?? (await stackValue(s, 'kubeContext')));
  const namespace = String(outputs.namespace ?? (await stackValue(s, 'namespace')));
  let image = String(outputs.image ?? '');
  const serviceName = /svc\/(\S+)/.exec(String(outputs.portForward ?? ''))?.[1] ?? 'data-service';

  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  const kubeconfig = await stackValue(s, 'kubeconfig');
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  if (!kc.getContextObject(context)) throw new Error(`kube context ${context} is not in the kubeconfig`);
  kc.setCurrentContext(context);
  const service = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedService({ name: serviceName, namespace });
  const selector = Object.entries(service.spec?.selector ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(',');

  const pods = new PodSet();
  const watch = await watchPods(kc, namespace, selector, pods, say);
  cleanups.push(() => watch.stop());
  const logs = new LogFollower({ pods, open: apiServerLogs(kc, namespace), print: (pod, line) => console.log(prettyLine(pod, line, { color })) });
  logs.start();
  cleanups.push(() => logs.stop());
  const forward = new Forward({ pods, dial: await apiServerDial(kc, namespace), port, log: say });
  const listening = await forward.listen();
  cleanups.push(() => forward.close());
  say(`http://127.0.0.1:${listening} → svc/${serviceName} in ${namespace} (${context}), to whichever of its pods is Ready; watching service/ for changes (Ctrl-C to stop)`);

  let deployedHash = startHash;
  let changes = 0;
  const update = async (batch: Batch) => {
    const hash = await hashNow();
    const files = batch.files.length > 5 ? `${batch.files.slice(0, 5).join(', ')} and ${batch.files.length - 5} more` : batch.files.join(', ');
    if (hash === deployedHash) {
      say(dim(`${files}: the build context is as deployed; nothing to do`));
      return;
    }
    changes += 1;
    const n = changes;
    say(bold(`change ${n}: ${files}`));
    const before = image;
    const probing = new AbortController();
    const answer = firstNewAnswer({ port: listening, forward, pods, isNew: (pod) => pod.image !== before, signal: probing.signal });
    const upStarted = Date.now();
    const up = pulumiUp(s, (line) => {
      if (!/^@ updating/.test(line)) console.log(dim(`  up ${`+${((Date.now() - upStarted) / 1000).toFixed(1)}s`.padStart(7)} │ ${line}`));
    }, color);
    current = up;
    const code = await up.done;
    current = undefined;
    const times = await up.times;
    if (stopping) return probing.abort();
    if (code !== 0) {
      probing.abort();
      say(bold(`change ${n} FAILED: pulumi up exit ${code} after ${seconds(times.totalMs)}; the running version keeps serving. Fix it and save again.`));
      deployedHash = ''; // the stack may be part-way: the next save updates whatever it holds
      return;
    }
    image = String((await stackOutputs(s)).image ?? image);
    // The program hashes the context when it starts, a moment after this update began: a save made
    // in that moment is already deployed. The tag says what was (minikube mode tags by that hash).
    deployedHash = /:([0-9a-f]{16})$/.exec(image)?.[1] ?? hash;
    if (image === before) {
      probing.abort();
      say(`change ${n}: no new image (pulumi up ${seconds(times.totalMs)})`);
      return;
    }
    // The rollout is complete when pulumi up ends; the first answer normally came before that.
    const timeout = setTimeout(() => probing.abort(), 60_000);
    const first = await answer;
    clearTimeout(timeout);
    say(
      bold(`change ${n} served: `) +
        `build ${seconds(times.buildMs)}, rollout ${seconds(times.rolloutMs)} (pulumi up ${seconds(times.totalMs)}); ` +
        (first ? `first new answer ${seconds(first.at - batch.firstAt)} after the save (${first.pod})` : 'no answer from the new version through the forward within 60 s'),
    );
  };
  const queue = new UpdateQueue(update, { onError: (error) => say(`update failed: ${(error as Error).message ?? String(error)}`) });
  cleanups.push(() => queue.stop());
  const watcher = watchBuildContext(serviceDir, (file) => {
    if (queue.submit(file) && queue.busy) say(dim(`${file} changed; it goes in the next update`));
  });
  cleanups.push(() => watcher.close());
  if ((await hashNow()) !== deployedHash) queue.submit('(files saved while the stack was brought up to date)');
}

main().catch(async (error: Error) => {
  console.error(`dev: ${error.message}`);
  await cleanUp().catch(() => undefined);
  process.exit(1);
});
