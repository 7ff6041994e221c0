/**
 * The README's main job, run as a user runs it, on the real node: `npm run up -- --yes` (the script, the
 * real Pulumi CLI and engine, a project-local backend, the passphrase from the environment, the DEFAULT
 * imageMode, minikube) with the minikube STAND-IN first on PATH (devkit/minikube-standin: the real
 * minikube cannot be had here; the stand-in does what minikube's source says, quirks included), then a
 * user's first weeks: a second run, a code change, `minikube delete` + start, a password rotation, a
 * broken build, a crashing version, and `pulumi destroy`.
 *
 * The one thing set before the first run is the MongoDB image: the official one cannot be pulled here,
 * so the stack runs MongoDB's STAND-IN (FerretDB posing as the mongo image, devkit/images), which the
 * stand-in node holds as a registry image.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import path from 'node:path';
import { KubeClient, type Manifest } from '../../devkit/kube';
import type { MinikubeStandIn } from '../../devkit/minikube-standin';
import { freePort } from '../../devkit/ports';
import { eventually } from '../../devkit/wait';
import { day2KubectlCommands, runCommand, tryItBlock, withKubectl } from './readme-commands';
import { steadyLoad } from './steady-load';
import { userWithMinikube, type UserProject } from './user-project';

const NAMESPACE = 'koa-mongodb';
const log = (line: string) => console.log(`      ${line}`);
const isReady = (pod: Manifest) => pod.status?.phase === 'Running' && pod.status?.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True');
/** What `pulumi up` did, from its closing summary ("Resources: + 3 created, 14 unchanged"). */
const summary = (output: string) => output.slice(output.lastIndexOf('Resources:'));

/** README commands the MongoDB stand-in cannot answer as MongoDB does, with the stand-in's own failure and why. */
const STAND_IN_GAPS: Array<{ command: RegExp; stands: (output: string) => boolean; why: string }> = [
  { command: /s\.wiredTiger\.cache/, stands: (out) => /TypeError: Cannot read property 'cache' of undefined/.test(out), why: 'FerretDB\'s serverStatus has no wiredTiger section' },
  // MongoDB prints { current, available, totalCreated, … }; undefined prints nothing.
  { command: /serverStatus\(\)\.connections/, stands: (out) => !/current/.test(out), why: 'FerretDB\'s serverStatus has no connections section' },
];

/** What the service's pods did, sampled every 500 ms: appeared, Ready, marked for deletion, gone. */
function podTimeline(list: () => Promise<Manifest[]>): { stop(): Promise<string[]> } {
  const events: string[] = [];
  const seen = new Map<string, string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = new Date().toISOString().slice(11, 23);
      const pods = await list().catch(() => undefined);
      if (pods) {
        const names = new Set(pods.map((pod) => pod.metadata.name as string));
        for (const pod of pods) {
          const state = pod.metadata.deletionTimestamp ? 'terminating' : isReady(pod) ? `ready ${pod.status.podIP}` : `not ready ${pod.status?.podIP ?? ''}`;
          if (seen.get(pod.metadata.name) !== state) events.push(`${now} ${pod.metadata.name} ${state}`);
          seen.set(pod.metadata.name, state);
        }
        for (const name of [...seen.keys()].filter((name) => !names.has(name))) {
          events.push(`${now} ${name} gone`);
          seen.delete(name);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  return { stop: async () => ((running = false), await loop, events) };
}

describe('the main job on the real node: npm run up, with the minikube stand-in, then a user\'s first weeks', function () {
  this.timeout(60 * 60_000);
  let mk: MinikubeStandIn;
  let user: UserProject;
  let api: KubeClient;
  let url: string;
  const welcome = () => fetch(`${url}/`, { signal: AbortSignal.timeout(10_000) }).then((res) => res.text());

  before(async () => {
    ({ mk, user } = await userWithMinikube(log));
  });

  after(async () => {
    if (user && mk?.node()) await user.pulumi(['destroy', '--yes', '--skip-preview']).catch((error: Error) => log(`clean-up destroy: ${error.message.split('\n')[0]}`));
    await mk?.stop();
  });

  const pods = async (prefix: string) => (await api.list('v1', 'Pod', NAMESPACE)).filter((pod) => pod.metadata.name.startsWith(prefix));
  const servicePods = () => pods('data-service-');
  const deployedImage = async () => (await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'))!.spec.template.spec.containers[0].image as string;
  const nodeImages = async () => (await mk.run(['image', 'ls', '--format', 'short'])).stdout.split('\n').filter(Boolean);
  const answersAt = async (target: string) =>
    eventually(`${target} to answer`, async () => (await fetch(`${target}/`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.status === 200, { timeoutMs: 120_000, everyMs: 200 });
  /** Load kept on until no pod of the old version is left (its drain included), then stopped. */
  const untilOldPodsGone = async (oldImage: string) =>
    eventually('the last old pod to finish its drain and go', async () => (await servicePods()).every((pod) => pod.spec.containers[0].image !== oldImage), { timeoutMs: 180_000, everyMs: 500 });

  it('first run: starts the profile, builds the image in the node, every pod Ready, the URL answers', async () => {
    const started = Date.now();
    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    api = KubeClient.fromKubeconfig(mk.kubeconfig);
    url = (await user.pulumi(['stack', 'output', 'url'])).trim();
    assert.match(url, /^http:\/\/192\.168\.49\.2:3\d{4}$/, 'the node IP from the kube context, as on Minikube');
    await answersAt(url);
    const serviceBuild = mk.builds.find((b) => b.reference.includes('data-service:'));
    log(`first npm run up: ${up.seconds.toFixed(1)} s; to an answering URL ${((Date.now() - started) / 1000).toFixed(1)} s (builder cache ${serviceBuild && serviceBuild.seconds > 60 ? 'cold' : 'warm'}, builds ${mk.builds.map((b) => `${b.reference.replace(/^docker\.io\/library\//, '').split(':')[0]} ${b.seconds.toFixed(1)} s`).join(', ')})`);
    assert.match(up.output, /starting Minikube/);
    assert.match(up.output, /enabling metrics-server/);
    // Two images, each from its own directory: the service's (service/) and the database admin tasks' (admin/, the backup CronJob).
    assert.deepEqual(mk.builds.map((b) => b.ok), [true, true], 'two builds, in the node');
    assert.deepEqual(mk.builds.map((b) => b.reference.replace(/^docker\.io\/library\//, '').split(':')[0]).sort(), ['data-admin', 'data-service']);
    const service = await servicePods();
    assert.equal(service.length, 2);
    assert.ok(service.every(isReady), 'both data-service pods Ready');
    assert.ok(isReady((await pods('mongodb-0'))[0]), 'mongodb-0 Ready');
    assert.equal((await api.get('batch/v1', 'Job', NAMESPACE, 'mongodb-users'))?.status?.succeeded, 1);
    const image = await deployedImage();
    assert.ok((await nodeImages()).includes(`docker.io/library/${image}`), `the node holds ${image}`);
    assert.match(await welcome(), /^Welcome to the Flask app!/);
  });

  it('second run: no change reported, nothing rebuilt', async () => {
    const builds = mk.builds.length;
    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    log(`second npm run up: ${up.seconds.toFixed(1)} s`);
    assert.doesNotMatch(summary(up.output), /created|updated|replaced|deleted/, summary(up.output));
    assert.match(summary(up.output), /\d+ unchanged/);
    assert.doesNotMatch(up.output, /^up: (starting|enabling|generating|creating stack|setting)/m);
    assert.equal(mk.builds.length, builds, 'no image build');
  });

  it('the README\'s "Then try it" block, as copied: its exports, the url output, the curls and kubectl get all', async () => {
    // As a user has it: the passphrase in the file the README names, not in the environment.
    const { PULUMI_CONFIG_PASSPHRASE: passphrase, ...rest } = user.env;
    mkdirSync(path.join(user.env.HOME!, '.config'), { recursive: true });
    writeFileSync(path.join(user.env.HOME!, '.config', 'koa-mongodb.passphrase'), passphrase!, { mode: 0o600 });
    const env = withKubectl(rest, log);
    const result = await runCommand(`set -euo pipefail\n${tryItBlock()}`, env, { cwd: user.dir, timeoutMs: 120_000 }).done;
    for (const line of result.output.trim().split('\n').slice(0, 12)) log(`| ${line.slice(0, 150)}`);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^Welcome to the Flask app! The current time is: /m);
    assert.match(result.output, /"key":"value"/, 'the POST then the GET');
    assert.match(result.output, /\{"status":"ready"/);
    assert.match(result.output, /pod\/mongodb-0 /);
    assert.match(result.output, /horizontalpodautoscaler.autoscaling\/data-service /);
  });

  it('the README\'s Day-2 kubectl commands work against the deployed stack, as copied from the README', async () => {
    const env = withKubectl(user.env, log);
    const rootPassword = (await user.pulumi(['config', 'get', 'mongoRootPassword'])).trim();
    const commands = day2KubectlCommands();
    assert.ok(commands.length >= 8, `the README's kubectl commands (${commands.length})`);
    for (const line of commands) {
      const command = line.replace(/"?\$\(pulumi config get mongoRootPassword\)"?/, `'${rootPassword}'`);
      const follows = / -f | --watch/.test(command);
      let result: { code: number | null; output: string; stopped: boolean };
      if (command.includes(' port-forward ')) {
        const forward = runCommand(command, env, { timeoutMs: 60_000 });
        const port = Number(/ (\d+):\d+$/.exec(command)![1]);
        const metrics = await eventually(`the forward to :${port}`, async () => {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
          return res?.ok ? res.text() : undefined;
        }, { timeoutMs: 30_000, everyMs: 500 });
        forward.stop();
        result = await forward.done;
        // The README's next line greps this.
        assert.match(metrics, /db_operation_duration_seconds/, 'the metrics the README greps for');
      } else if (command.startsWith('kubectl top ')) {
        // metrics-server has a figure for a pod only after its first scrape.
        result = await eventually('kubectl top to have figures', async () => {
          const run = await runCommand(command, env, { timeoutMs: 30_000 }).done;
          return run.code === 0 ? run : undefined;
        }, { timeoutMs: 120_000, everyMs: 5000 });
      } else {
        result = await runCommand(command, env, follows ? { followMs: 6000 } : { timeoutMs: 60_000 }).done;
      }
      const gap = STAND_IN_GAPS.find((known) => known.command.test(command));
      if (gap && !/MongoServerError|MongoNetworkError/.test(result.output) && gap.stands(result.output)) {
        // It logged in (no server or network error) and ran serverStatus; the stand-in's answer lacks what MongoDB's has.
        log(`$ ${line.slice(0, 80)}...: not answerable by the MongoDB stand-in (${gap.why})`);
        continue;
      }
      const shown = result.output.trim().split('\n');
      log(`$ ${line.length > 110 ? `${line.slice(0, 107)}...` : line}`);
      for (const out of shown.slice(0, 3)) log(`    ${out.slice(0, 150).replace(rootPassword, '***')}`);
      if (follows) assert.ok(result.stopped, `${line}: still following when stopped`);
      else assert.ok(result.stopped || result.code === 0, `${line}: exit ${result.code}\n${result.output.replace(rootPassword, '***')}`);
      assert.doesNotMatch(result.output, /^error: |Error from server/m, line);
      assert.ok(result.output.trim().length > 0, `${line}: printed something`);
    }
  });

  it('a one-line change to service/src: one new image built in the node, rolled out under load with no failed request, no Job run again', async () => {
    const oldImage = await deployedImage();
    const builds = mk.builds.length;
    // The users Jobs run the admin image: a change to the service's code leaves them as they are (not run again).
    const jobUids = async () => Promise.all(['mongodb-users', 'mongodb-retire-users'].map(async (name) => (await api.get('batch/v1', 'Job', NAMESPACE, name))?.metadata.uid as string));
    const jobsBefore = await jobUids();
    user.edit('service/src/routes/root.ts', 'Welcome to the Flask app!', 'Welcome to the Flask app! (v2)');
    const load = steadyLoad(`${url}/`, { body: (text) => text.slice(0, 30) });
    const started = Date.now();
    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    const upSeconds = (Date.now() - started) / 1000;
    await eventually('the new version to answer', async () => (await welcome()).includes('(v2)'), { timeoutMs: 60_000 });
    const firstNew = (Date.now() - started) / 1000;
    await untilOldPodsGone(oldImage);
    await load.stop();
    log(`change → rolled out: npm run up ${upSeconds.toFixed(1)} s (build ${mk.builds.at(-1)?.seconds.toFixed(1)} s), first new answer at ${firstNew.toFixed(1)} s; ${load.answered} requests answered, ${load.failures.length} failed`);
    assert.deepEqual(load.failures, []);
    assert.ok(load.answered > 50, `steady load ran (${load.answered})`);
    assert.equal(mk.builds.length, builds + 1, 'exactly one new build');
    assert.match(mk.builds.at(-1)!.reference, /data-service:/, 'the service\'s: the admin image\'s tag hashes admin/ only');
    assert.deepEqual(await jobUids(), jobsBefore, 'the users Jobs are the same objects: not replaced, not run again');
    const image = await deployedImage();
    assert.notEqual(image, oldImage);
    const onNode = await nodeImages();
    assert.ok(onNode.includes(`docker.io/library/${image}`), 'the new image is on the node');
    assert.ok(!onNode.includes(`docker.io/library/${oldImage}`), 'the replaced image was removed from the node');
  });

  it('minikube delete + start: the next npm run up creates everything again and rebuilds; new pods find the image', async () => {
    const deleted = await mk.run(['delete']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const builds = mk.builds.length;
    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    log(`npm run up on the recreated cluster: ${up.seconds.toFixed(1)} s`);
    assert.match(up.output, /starting Minikube/);
    assert.match(summary(up.output), /created|replaced/);
    assert.equal(mk.builds.length, builds + 2, 'both images were built again on the new node');
    api = KubeClient.fromKubeconfig(mk.kubeconfig); // minikube rewrote the kubeconfig (same context and address, new token)
    assert.equal((await user.pulumi(['stack', 'output', 'url'])).trim().replace(/:\d+$/, ''), url.replace(/:\d+$/, ''));
    url = (await user.pulumi(['stack', 'output', 'url'])).trim();
    await answersAt(url);
    const image = await deployedImage();
    assert.ok((await nodeImages()).includes(`docker.io/library/${image}`), `the rebuilt image ${image} is still on the node after the update`);
    // A scale-up (the HPA's, a restart, a new node's) makes new pods, which must find the image.
    const patched = await api.request('PATCH', `/apis/autoscaling/v2/namespaces/${NAMESPACE}/horizontalpodautoscalers/data-service`, { spec: { minReplicas: 4 } }, 'application/merge-patch+json');
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const scaled = await eventually('4 data-service pods Ready', async () => {
      const ready = (await servicePods()).filter(isReady);
      return ready.length >= 4 ? ready : undefined;
    }, { timeoutMs: 180_000, everyMs: 1000, detail: () => 'pods did not turn Ready (ErrImagePull: the image is gone from the node?)' });
    assert.ok(scaled.every((pod) => pod.spec.containers[0].image === image));
    await api.request('PATCH', `/apis/autoscaling/v2/namespaces/${NAMESPACE}/horizontalpodautoscalers/data-service`, { spec: { minReplicas: 2 } }, 'application/merge-patch+json');
  });

  it('a password rotation: the service\'s pods roll onto a new user, the old password is refused, new connections work, no request fails', async () => {
    const secretUser = async () => {
      const secret = await api.get('v1', 'Secret', NAMESPACE, 'mongodb-credentials');
      return Buffer.from(secret!.data['app-username'], 'base64').toString();
    };
    const oldUser = { username: await secretUser(), password: (await user.pulumi(['config', 'get', 'mongoAppPassword'])).trim() };
    const newPassword = `rotated-${randomBytes(12).toString('base64url')}`;
    const before = new Set((await servicePods()).map((pod) => pod.metadata.name));
    // The pod template itself must change (a new ReplicaSet), not just the pods (an HPA scaling down renames none).
    const templates = new Set((await servicePods()).map((pod) => pod.metadata.labels['pod-template-hash']));
    await user.pulumi(['config', 'set', '--secret', 'mongoAppPassword', newPassword]);
    const load = steadyLoad(`${url}/data?limit=5`);
    const timeline = podTimeline(servicePods);
    log(`rotation starts with the Deployment at ${(await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'))!.spec.replicas} replicas`);
    const up = await user.up();
    assert.equal(up.code, 0, up.output);
    // The load runs until the last old pod has finished its drain (the retire Job waited for it too).
    await eventually('every pod from before the rotation to go', async () => (await servicePods()).every((pod) => !before.has(pod.metadata.name)), { timeoutMs: 180_000, everyMs: 500 });
    await load.stop();
    const events = await timeline.stop();
    if (load.failures.length) for (const line of events) log(`pods: ${line}`);
    const window = load.failures.length ? ` (from ${load.failures[0].slice(11, 23)} to ${load.failures.at(-1)!.slice(11, 23)})` : '';
    log(`rotation: npm run up ${up.seconds.toFixed(1)} s; ${load.answered} requests answered, ${load.failures.length} failed${window}`);
    const after = await servicePods();
    assert.ok(after.length >= 2 && after.every((pod) => !before.has(pod.metadata.name)), 'the service\'s pods rolled');
    assert.ok(after.every((pod) => !templates.has(pod.metadata.labels['pod-template-hash'])), 'onto a new pod template (a new ReplicaSet): they read the new credentials at start');
    const newUser = { username: await secretUser(), password: newPassword };
    assert.match(newUser.username, /^app-[0-9a-f]{10}$/);
    assert.notEqual(newUser.username, oldUser.username, 'a user of its own for the new password');
    // To mongod through `kubectl port-forward` (the kubelet dials it inside the pod, on its loopback): the
    // NetworkPolicy admits only the data service's pods and the users Jobs, so the host's own dial is dropped.
    const port = await freePort();
    const forward = runCommand(`kubectl -n ${NAMESPACE} port-forward pod/mongodb-0 ${port}:27017 --address 127.0.0.1`, withKubectl(user.env, log), { timeoutMs: 120_000 });
    const login = async (auth: { username: string; password: string }) => {
      const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, { auth, authSource: 'flask_db', serverSelectionTimeoutMS: 5000 });
      try {
        await client.db('flask_db').collection('data').findOne({});
        return 'ok';
      } catch (error) {
        return (error as Error).message;
      } finally {
        await client.close();
      }
    };
    try {
      // The forward listens within a few seconds; until then the dial is refused, not the login.
      const refused = await eventually('the forward to mongodb-0 to answer', async () => {
        const answer = await login(oldUser);
        return /ECONNREFUSED|timed out|Server selection/i.test(answer) ? undefined : answer;
      }, { timeoutMs: 30_000, everyMs: 500 });
      assert.match(refused, /auth|password|credentials/i, 'the old password is refused by mongod (its user was retired), not by the network');
      assert.match(await login({ username: newUser.username, password: oldUser.password }), /auth|password|credentials/i);
      assert.equal(await login(newUser), 'ok', 'the new password works');
    } finally {
      forward.stop();
      await forward.done;
    }
    const posted = await fetch(`${url}/data`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rotated: true }), signal: AbortSignal.timeout(10_000) });
    assert.equal(posted.status, 201, 'the rolled pods write with the new password');
    assert.ok(load.answered > 20, `steady load ran (${load.answered})`);
    assert.deepEqual(load.failures, [], 'no request failed during the rotation');
  });

  it('a broken build: up fails within a minute naming the builder\'s error, and the running version keeps serving', async () => {
    const running = await deployedImage();
    const undo = user.edit('service/src/routes/root.ts', 'export function rootRouter', "export const broken: number = 'not a number';\nexport function rootRouter");
    try {
      const load = steadyLoad(`${url}/`);
      const up = await user.up();
      await load.stop();
      log(`broken build: npm run up failed in ${up.seconds.toFixed(1)} s (exit ${up.code}); ${load.answered} requests answered meanwhile, ${load.failures.length} failed`);
      assert.notEqual(up.code, 0, 'the update fails');
      assert.ok(up.seconds < 60 + 30, `it fails quickly (${up.seconds} s, of which the build ~${mk.builds.at(-1)?.seconds.toFixed(0)} s)`);
      assert.match(up.output, /TS2322|Type 'string' is not assignable to type 'number'/, 'the builder\'s own error is shown');
      assert.equal(await deployedImage(), running, 'the Deployment still runs the last good image');
      assert.deepEqual(load.failures, []);
      assert.match(await welcome(), /\(v2\)/);
    } finally {
      undo();
    }
  });

  it('a version that crashes on start: up fails with the pods\' events and last log lines and the kubectl commands to look further; the old version serves', async () => {
    const running = await deployedImage();
    await user.pulumi(['config', 'set', 'rolloutTimeoutSeconds', '60']);
    const undo = user.edit('service/src/main.ts', 'async function main(): Promise<void> {', "async function main(): Promise<void> {\n  if (process.env.PORT) {\n    process.stderr.write('crash-test: refusing to start\\n');\n    process.exit(3);\n  }");
    try {
      const up = await user.up();
      log(`crashing version: npm run up failed in ${up.seconds.toFixed(1)} s (exit ${up.code})`);
      const diagnosis = up.output.slice(up.output.indexOf('up: diagnosis'));
      for (const line of diagnosis.split('\n').slice(0, 30)) log(`| ${line}`);
      assert.notEqual(up.code, 0);
      assert.match(diagnosis, /crash-test: refusing to start/, 'the crashing container\'s last log lines');
      assert.match(diagnosis, /BackOff|CrashLoopBackOff|Back-off/, 'the pod\'s events');
      assert.match(diagnosis, /kubectl --context minikube -n koa-mongodb (logs|describe)/, 'the commands to look further');
      assert.equal((await fetch(`${url}/`, { signal: AbortSignal.timeout(10_000) })).status, 200, 'the old pods still serve');
    } finally {
      undo();
    }
    await user.pulumi(['config', 'rm', 'rolloutTimeoutSeconds']);
    const fixed = await user.up();
    assert.equal(fixed.code, 0, fixed.output);
    assert.equal(await deployedImage(), running, 'back on the good version');
  });

  it('pulumi destroy (by hand, as the README says): nothing of ours left on the node, images included', async () => {
    const saved = await mk.node()!.exec('iptables-save', []);
    assert.ok(saved.includes(`${NAMESPACE}/data-service`), 'our Service rules exist before (the check reads real rules)');
    await user.pulumi(['destroy', '--yes', '--skip-preview']);
    await eventually('the namespace gone', async () => (await api.get('v1', 'Namespace', undefined, NAMESPACE)) === undefined, { timeoutMs: 180_000 });
    await eventually('no volume of ours', async () => (await api.request('GET', '/api/v1/persistentvolumes')).body.items.every((pv: Manifest) => pv.spec.claimRef?.namespace !== NAMESPACE), { timeoutMs: 60_000 });
    await eventually('kube-proxy to drop our Services\' rules', async () => !(await mk.node()!.exec('iptables-save', [])).includes(`${NAMESPACE}/`), { timeoutMs: 90_000 });
    await eventually('no container of ours left on the node', async () => {
      const containers = await mk.node()!.ctr(['containers', 'list']);
      return !/data-service|mongo-standin/.test(containers);
    }, { timeoutMs: 120_000 });
    assert.deepEqual((await nodeImages()).filter((ref) => /data-service|data-admin/.test(ref)), [], 'the service\'s and the admin images are gone from the node');
  });
});
