/**
 * The real Pulumi engine (CLI 3.248.0, a Node.js language host, the Kubernetes
 * provider 4.25.0, all built from the Go module proxy) applying this program to
 * the local API server: preview, up, a no-op up, an in-place update, secrets
 * encrypted at rest, the url output, and destroy. kwok plays the kubelet, so
 * Pulumi really awaits the rollouts (pods turn Ready, nothing runs); the stack
 * uses the static volume (no storage provisioner here) and the `prebuilt` image
 * mode (no Docker engine to build with).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CONTEXT, startControlPlane, type ControlPlane } from '../../devkit/control-plane';
import { REPO_ROOT } from '../../devkit/paths';
import { ensurePulumiEngine } from '../../devkit/pulumi-engine';
import { BACKUPS_PV, Pulumi, backupsVolume, projectCopy } from './engine';
import { KubeClient } from '../../devkit/kube';
import { scratchDir } from '../../devkit/scratch';
import { namespaceSnapshot } from '../../devkit/snapshot';
import { eventually } from '../../devkit/wait';

const NAMESPACE = 'koa-engine';
const IMAGE = 'ghcr.io/example/data-service:1.0.0';
const ADMIN_IMAGE = 'ghcr.io/example/data-admin:1.0.0';
const ROOT_PASSWORD = `root-${randomBytes(8).toString('hex')}`;
const APP_PASSWORD = `app-${randomBytes(8).toString('hex')}`;
const APP_ROTATED = `rotated-${randomBytes(8).toString('hex')}`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

describe('pulumi preview, up and destroy with the real engine on the local API server', function () {
  this.timeout(40 * 60_000); // the first run on a machine builds the engine
  let plane: ControlPlane;
  let api: KubeClient;
  let pulumi: Pulumi;
  let project: string;
  let state: string;

  before(async () => {
    const bin = ensurePulumiEngine((line) => console.log(`      ${line}`));
    plane = await startControlPlane((line) => console.log(`      ${line}`));
    api = KubeClient.fromKubeconfig(plane.kubeconfig);
    await backupsVolume(api);
    project = projectCopy();
    state = scratchDir('koa-engine-state-');
    pulumi = new Pulumi(project, {
      ...process.env,
      PATH: `${bin}${path.delimiter}${process.env.PATH}`,
      PULUMI_HOME: scratchDir('koa-engine-home-'),
      PULUMI_BACKEND_URL: `file://${state}`,
      PULUMI_CONFIG_PASSPHRASE: randomBytes(12).toString('hex'),
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      KUBECONFIG: plane.kubeconfig,
    });
    await pulumi.ok(['stack', 'init', 'cluster']);
    for (const [key, value] of Object.entries({ kubeContext: CONTEXT, namespace: NAMESPACE, imageMode: 'prebuilt', image: IMAGE, adminImage: ADMIN_IMAGE, mongoStaticVolume: 'true' })) {
      await pulumi.ok(['config', 'set', key, value]);
    }
    await pulumi.ok(['config', 'set', '--secret', 'mongoRootPassword', ROOT_PASSWORD]);
    await pulumi.ok(['config', 'set', '--secret', 'mongoAppPassword', APP_PASSWORD]);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && api) console.log(await namespaceSnapshot(api, NAMESPACE, plane.dir));
  });

  after(async () => {
    await pulumi?.run(['stack', 'rm', '--yes', '--force']);
    await plane?.stop();
  });

  it('pulumi preview plans every object, and pulumi up creates them', async () => {
    const preview = await pulumi.ok(['preview', '--diff']);
    assert.match(preview, /\+ 2[0-9] to create/); // 24 with the admin image, the backups and DatabaseUsers
    const up = await pulumi.ok(['up', '--yes', '--skip-preview']);
    assert.match(up, /2[0-9] created/);
  });

  it('every object is on the API server as declared', async () => {
    const deployment = await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service');
    const container = deployment!.spec.template.spec.containers[0];
    assert.equal(container.image, IMAGE);
    assert.equal(deployment!.spec.replicas, 2);
    assert.deepEqual(container.resources, { requests: { cpu: '200m', memory: '250Mi' }, limits: { cpu: '500m', memory: '500Mi' } });
    assert.equal(deployment!.metadata.annotations?.['pulumi.com/skipAwait'], undefined, 'awaited for real');
    assert.equal(deployment!.status.readyReplicas, 2, 'Pulumi waited for the rollout: both pods Ready');
    assert.equal((await api.get('apps/v1', 'StatefulSet', NAMESPACE, 'mongodb'))!.status.readyReplicas, 1);
    assert.equal((await api.get('apps/v1', 'StatefulSet', NAMESPACE, 'mongodb'))!.spec.serviceName, 'mongodb');
    assert.equal((await api.get('v1', 'Service', NAMESPACE, 'mongodb'))!.spec.clusterIP, 'None');
    assert.equal((await api.get('v1', 'Service', NAMESPACE, 'data-service'))!.spec.type, 'NodePort');
    assert.equal((await api.get('autoscaling/v2', 'HorizontalPodAutoscaler', NAMESPACE, 'data-service'))!.spec.maxReplicas, 5);
    assert.ok(await api.get('policy/v1', 'PodDisruptionBudget', NAMESPACE, 'data-service'));
    assert.ok(await api.get('networking.k8s.io/v1', 'NetworkPolicy', NAMESPACE, 'mongodb-clients'));
    assert.ok(await api.get('v1', 'PersistentVolumeClaim', NAMESPACE, 'mongodb-data'));
    const secret = await api.get('v1', 'Secret', NAMESPACE, 'mongodb-credentials');
    assert.equal(Buffer.from(secret!.data['app-password'], 'base64').toString(), APP_PASSWORD);
  });

  it('a second up changes nothing', async () => {
    await pulumi.ok(['up', '--yes', '--expect-no-changes']);
  });

  it('a config change updates the Deployment in place, and the rollout completes', async () => {
    const before = await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service');
    await pulumi.ok(['config', 'set', 'cpuLimit', '750m']);
    const up = await pulumi.ok(['up', '--yes', '--skip-preview']);
    assert.match(up, /1 updated/);
    const after = await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service');
    assert.equal(after!.metadata.uid, before!.metadata.uid, 'same object: updated, not replaced');
    assert.equal(after!.spec.template.spec.containers[0].resources.limits.cpu, '750m');
    assert.equal(after!.status.updatedReplicas, 2, 'Pulumi returned after the new pods were up');
  });

  it('a password rotation updates the Secret in place and rolls the Deployment; nothing is deleted or replaced', async () => {
    const uids = async () => ({
      secret: (await api.get('v1', 'Secret', NAMESPACE, 'mongodb-credentials'))!.metadata.uid,
      deployment: (await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'))!.metadata.uid,
      statefulSet: (await api.get('apps/v1', 'StatefulSet', NAMESPACE, 'mongodb'))!.metadata.uid,
    });
    const template = async () => (await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'))!.spec.template.metadata.annotations;
    const before = { uids: await uids(), template: await template() };
    await pulumi.ok(['config', 'set', '--secret', 'mongoAppPassword', APP_ROTATED]);
    const up = await pulumi.ok(['up', '--yes', '--skip-preview']);
    // By default the provider replaces a Secret whose data changed, and (fixed names, delete first) every
    // object using it went with it: the Deployment and the StatefulSet deleted and created again. Only the
    // two user Jobs are replaced: they run again for the new credentials.
    const replaced = new Set(up.split('\n').filter((line) => /replac|deleting original/.test(line)).map((line) => line.match(/kubernetes:\S+ \S+/)?.[0]).filter(Boolean));
    assert.deepEqual([...replaced].sort(), ['kubernetes:batch/v1:Job mongodb-retire-users', 'kubernetes:batch/v1:Job mongodb-users'], up);
    assert.deepEqual(await uids(), before.uids, 'the same objects, updated');
    assert.notEqual((await template())['koa-mongodb/credentials-revision'], before.template['koa-mongodb/credentials-revision'], 'the pods roll onto the new credentials');
    const secret = await api.get('v1', 'Secret', NAMESPACE, 'mongodb-credentials');
    assert.equal(Buffer.from(secret!.data['app-password'], 'base64').toString(), APP_ROTATED);
    assert.match(Buffer.from(secret!.data['app-username'], 'base64').toString(), /^app-[0-9a-f]{10}$/);
  });

  it('keeps the secrets encrypted in the stack file and in the state', () => {
    const stackFile = readFileSync(path.join(project, 'Pulumi.cluster.yaml'), 'utf8');
    assert.match(stackFile, /koa-mongodb:mongoAppPassword:\s+secure: /);
    const everything = [stackFile, ...filesUnder(state).map((file) => readFileSync(file, 'utf8'))].join('\n');
    for (const secret of [ROOT_PASSWORD, APP_PASSWORD, APP_ROTATED]) {
      assert.ok(!everything.includes(secret), 'no plaintext secret at rest');
      assert.ok(!everything.includes(Buffer.from(secret).toString('base64')), 'no base64 secret at rest');
    }
  });

  it('pulumi stack output url answers the form the README promises', async () => {
    // The local API server is on loopback, so the node port is not reachable as such: the port-forward form.
    assert.equal((await pulumi.ok(['stack', 'output', 'url'])).trim(), 'http://localhost:5000');
    assert.equal((await pulumi.ok(['stack', 'output', 'portForward'])).trim(), `kubectl --context ${CONTEXT} -n ${NAMESPACE} port-forward svc/data-service 5000:5000`);
    assert.equal((await pulumi.ok(['stack', 'output', 'mongoHost'])).trim(), `mongodb.${NAMESPACE}.svc.cluster.local`);
  });

  it('npm run load watches the deployed HPA and Deployment through the API server', async () => {
    // Both pods Ready first: the rollout just before leaves the Deployment's counts in flux for a while
    // (one CI run saw 0 of 2 Ready for the 5 s of the load, others 3 or 4), and this is about the tool.
    await eventually('both data-service pods Ready', async () => (await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'))?.status?.readyReplicas === 2, { timeoutMs: 120_000 });
    // The load half needs any HTTP target; the HPA half reads the stack just deployed.
    const target = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const { port } = target.address() as AddressInfo;
    const out = path.join(scratchDir('koa-load-'), 'chart.svg');
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--require', 'tsx/cjs', path.join(REPO_ROOT, 'scripts', 'load.ts'), '--url', `http://127.0.0.1:${port}`, '--duration', '4', '--interval', '1', '--connections', '5', '--context', CONTEXT, '--namespace', NAMESPACE, '--out', out],
        { cwd: REPO_ROOT, env: { ...process.env, KUBECONFIG: plane.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('exit', (code) => resolve({ code, output }));
    });
    target.close();
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, new RegExp(`watching HPA ${NAMESPACE}/data-service on ${CONTEXT}`));
    assert.match(result.output, /replicas 2 ready\/2 /, `live lines carry the HPA and Deployment figures:\n${result.output}`);
    // No metrics-server runs here: the tool says why the HPA cannot scale instead of printing a target of 0.
    assert.match(result.output, /\(wants \?\), cpu \?% \[HPA cannot scale: \w+; is metrics-server running\?\]/);
    assert.match(readFileSync(out, 'utf8'), /replicas \(HPA current\)/);
  });

  it('pulumi destroy leaves nothing of ours behind', async () => {
    const destroy = await pulumi.ok(['destroy', '--yes', '--skip-preview']);
    assert.match(destroy, /2[0-9] deleted/);
    const namespace = await api.get('v1', 'Namespace', undefined, NAMESPACE);
    assert.ok(namespace === undefined || namespace.status.phase === 'Terminating', 'the namespace is gone or going');
    const volumes = await api.request('GET', '/api/v1/persistentvolumes');
    const ours = ((volumes.body.items ?? []) as { metadata: { name: string } }[]).filter((volume) => volume.metadata.name !== BACKUPS_PV);
    assert.deepEqual(ours, [], 'no volume of the stack\'s (the backups volume is the test\'s own)');
  });
});
