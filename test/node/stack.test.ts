/**
 * The whole stack on a real node: the real Pulumi engine (CLI 3.248, the Node.js language host, the
 * Kubernetes provider 4.25, built from the Go module proxy), the local control plane with a real node
 * joined (devkit/node: containerd + runc, kubelet, kube-proxy, CoreDNS, metrics-server, a hostPath
 * StorageClass `standard` as Minikube has), and the images made here (devkit/images: the service and
 * admin images built from service/Dockerfile and admin/Dockerfile; MongoDB's STAND-IN, FerretDB posing as the mongo image, because the
 * real image cannot be fetched here). Containers run for real: probes, security contexts, the Secret's
 * wiring, the users Job, DNS, the NodePort URL, the HPA on real CPU metrics, a rollout under load, and
 * destroy. `imageMode: prebuilt` (the pulumi-docker provider cannot be built here; the image is imported
 * into the node as `minikube image build` would leave it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { CONTEXT } from '../../devkit/control-plane';
import { buildAdminImage, buildServiceImage, ensureMongoStandIn } from '../../devkit/images';
import { KubeClient, type Manifest } from '../../devkit/kube';
import { startNodeCluster, type LocalNode } from '../../devkit/node/node';
import { REPO_ROOT } from '../../devkit/paths';
import { ensurePulumiEngine } from '../../devkit/pulumi-engine';
import { eventually } from '../../devkit/wait';
import { Pulumi, projectCopy } from '../cluster/engine';
import { scratchDir } from '../../devkit/scratch';

const NAMESPACE = 'koa-mongodb';
const log = (line: string) => console.log(`      ${line}`);
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);
const isReady = (pod: Manifest) => pod.status?.phase === 'Running' && pod.status?.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True');

describe('the stack on a real node: pulumi up with real containers', function () {
  this.timeout(45 * 60_000); // a first run on a machine builds the node, the images and the engine
  let cluster: { plane: { kubeconfig: string }; node: LocalNode; stop(): Promise<void> };
  let api: KubeClient;
  let pulumi: Pulumi;
  let project: string;
  let serviceRef: string;
  let rolloutRef: string;
  let url: string;
  const posted = { key: `node-${randomBytes(4).toString('hex')}` };

  before(async () => {
    const bin = ensurePulumiEngine(log);
    const started = Date.now();
    const service = await buildServiceImage(undefined, { log });
    // A second tag of the same build: a new reference, so the Deployment rolls out, as a code change would.
    const rollout = await buildServiceImage(`${service.ref.split(':')[1]}-rollout`, { log });
    const admin = await buildAdminImage({ log });
    const mongo = await ensureMongoStandIn({ log });
    log(`images ready in ${seconds(started)} s`);
    cluster = await startNodeCluster(log, { metricResolution: '15s' });
    api = KubeClient.fromKubeconfig(cluster.plane.kubeconfig);
    const importOne = async (archive: string, pick: RegExp) => {
      const refs = await cluster.node.importImage(archive);
      const ref = refs.find((r) => pick.test(r));
      assert.ok(ref, `${archive} imported as ${refs.join(', ')}`);
      return ref;
    };
    serviceRef = await importOne(service.archive, /data-service:[0-9a-f]{16}$/);
    rolloutRef = await importOne(rollout.archive, /data-service:[0-9a-f]{16}-rollout$/);
    const adminRef = await importOne(admin.archive, /data-admin:[0-9a-f]{16}$/);
    const mongoRef = await importOne(mongo.archive, /mongo-standin@sha256:/); // by digest: pinned, as the stack demands
    log(`node ${cluster.node.nodeIp} up with the images imported, ${seconds(started)} s after the start`);

    project = projectCopy();
    pulumi = new Pulumi(project, {
      ...process.env,
      PATH: `${bin}${path.delimiter}${process.env.PATH}`,
      PULUMI_HOME: scratchDir('koa-node-home-'),
      PULUMI_BACKEND_URL: `file://${scratchDir('koa-node-state-')}`,
      PULUMI_CONFIG_PASSPHRASE: randomBytes(12).toString('hex'),
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      KUBECONFIG: cluster.plane.kubeconfig,
    });
    await pulumi.ok(['stack', 'init', 'node']);
    // As on Minikube, but for the context's name, the node's address and the prebuilt images.
    const config = { kubeContext: CONTEXT, imageMode: 'prebuilt', image: serviceRef, adminImage: adminRef, mongoImage: mongoRef, minikubeIp: cluster.node.nodeIp };
    for (const [key, value] of Object.entries(config)) await pulumi.ok(['config', 'set', key, value]);
    await pulumi.ok(['config', 'set', '--secret', 'mongoRootPassword', `root-${randomBytes(9).toString('base64url')}`]);
    await pulumi.ok(['config', 'set', '--secret', 'mongoAppPassword', `app-${randomBytes(9).toString('base64url')}`]);
  });

  after(async () => {
    await pulumi?.run(['destroy', '--yes']);
    await pulumi?.run(['stack', 'rm', '--yes', '--force']);
    await cluster?.stop();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  const pods = async (prefix: string) => (await api.list('v1', 'Pod', NAMESPACE)).filter((pod) => pod.metadata.name.startsWith(prefix));

  it('pulumi up succeeds, awaiting real rollouts: every pod Running and Ready, the users Job complete', async () => {
    const started = Date.now();
    const up = await pulumi.ok(['up', '--yes', '--skip-preview']);
    log(`pulumi up: ${seconds(started)} s to every object ready`);
    assert.match(up, /created/);
    const service = await pods('data-service-');
    assert.equal(service.length, 2);
    assert.ok(service.every(isReady), 'both data-service pods Ready');
    const [mongo] = await pods('mongodb-0');
    assert.ok(isReady(mongo), 'mongodb-0 Ready');
    assert.equal(mongo.spec.containers[0].securityContext.allowPrivilegeEscalation, false);
    const job = await api.get('batch/v1', 'Job', NAMESPACE, 'mongodb-users');
    assert.equal(job?.status?.succeeded, 1, 'the app user was made from the Secret');
    const claim = await api.get('v1', 'PersistentVolumeClaim', NAMESPACE, 'mongodb-data');
    assert.equal(claim?.status?.phase, 'Bound', 'the standard StorageClass provisioned the claim');
  });

  it('the url output answers from the node\'s address through kube-proxy\'s NodePort; POST then GET round-trips to the database', async () => {
    url = (await pulumi.ok(['stack', 'output', 'url'])).trim();
    assert.match(url, new RegExp(`^http://${cluster.node.nodeIp.replace(/\./g, '\\.')}:3\\d{4}$`));
    const metrics = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(metrics.status, 404, '/metrics is served on its own port, not through the public Service');
    const root = await fetch(`${url}/`, { signal: AbortSignal.timeout(10_000) });
    assert.match(await root.text(), /^Welcome to the Flask app! The current time is: /);
    const created = await fetch(`${url}/data`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(posted), signal: AbortSignal.timeout(10_000) });
    assert.equal(created.status, 201, await created.clone().text());
    const list = await fetch(`${url}/data`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), [posted]);
  });

  it('deleting the database pod loses no acknowledged write, and the service recovers without a restart', async () => {
    const [old] = await pods('mongodb-0');
    const restartsBefore = (await pods('data-service-')).map((pod) => pod.status.containerStatuses[0].restartCount);
    const started = Date.now();
    const deleted = await api.request('DELETE', `/api/v1/namespaces/${NAMESPACE}/pods/mongodb-0`);
    assert.ok(deleted.status === 200 || deleted.status === 202, `delete answered ${deleted.status}`);
    await eventually('a new mongodb-0, Ready', async () => {
      const [pod] = await pods('mongodb-0');
      return pod && pod.metadata.uid !== old.metadata.uid && isReady(pod) ? pod : undefined;
    }, { timeoutMs: 180_000 });
    const back = await eventually('GET /data answering again', async () => {
      const res = await fetch(`${url}/data`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      return res?.status === 200 ? ((await res.json()) as unknown[]) : undefined;
    }, { timeoutMs: 120_000 });
    log(`database pod replaced and the service answering again in ${seconds(started)} s`);
    assert.deepEqual(back, [posted], 'the claim kept the acknowledged write');
    const restartsAfter = (await pods('data-service-')).map((pod) => pod.status.containerStatuses[0].restartCount);
    assert.deepEqual(restartsAfter, restartsBefore, 'no data-service container restarted');
  });

  it('npm run load drives the HPA from 2 to 5 Ready pods on real CPU metrics, with no failed request', async () => {
    const out = path.join(scratchDir('koa-node-load-'), 'load.svg');
    const args = ['tsx', 'scripts/load.ts', '--url', url, '--path', '/data?limit=100', '--duration', '150', '--connections', '40', '--interval', '10', '--context', CONTEXT, '--out', out];
    // The database pod was just replaced (the test before): the service's pods turn Ready again at their own
    // pace, so the load starts from a settled Deployment.
    await eventually('both data-service pods Ready before the load', async () => (await pods('data-service-')).filter(isReady).length === 2, { timeoutMs: 120_000, everyMs: 1000 });
    // Ready pods counted here from the API, not the HPA's own count (which includes pods still starting).
    const readyCounts: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        readyCounts.push((await pods('data-service-')).filter(isReady).length);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
    const output = await new Promise<string>((resolve, reject) => {
      execFile('npx', args, { cwd: REPO_ROOT, env: { ...process.env, KUBECONFIG: cluster.plane.kubeconfig }, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
      );
    });
    sampling = false;
    await sampler;
    for (const line of output.split('\n').filter((l) => /^t=|replicas .* → |errors/.test(l))) log(line);
    const peak = Math.max(...readyCounts);
    const firstAbove = readyCounts.findIndex((n) => n > 2);
    log(`Ready pods: ${readyCounts[0]} at the start, ${peak} at the peak; first above 2 about ${firstAbove < 0 ? 'never' : `${firstAbove * 2} s`} into the load`);
    assert.equal(readyCounts[0], 2, 'the HPA starts from minReplicas');
    assert.equal(peak, 5, 'the HPA takes the Deployment to maxReplicas Ready pods');
    const total = /total (\d+) requests, .* (\d+) errors/.exec(output);
    assert.ok(total, output);
    assert.ok(Number(total[1]) > 1000, `the load ran (${total[1]} requests)`);
    assert.equal(Number(total[2]), 0, 'no request of the load failed');
  });

  it('an image change (a new tag) rolls out with zero failed requests under steady load', async () => {
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const client = async () => {
      while (running) {
        try {
          const res = await fetch(`${url}/data?limit=10`, { signal: AbortSignal.timeout(10_000) });
          await res.arrayBuffer();
          if (res.status === 200) ok += 1;
          else failures.push(`status ${res.status}`);
        } catch (error) {
          failures.push((error as Error).message);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const clients = Array.from({ length: 4 }, client);
    const started = Date.now();
    await pulumi.ok(['config', 'set', 'image', rolloutRef]);
    const up = await pulumi.ok(['up', '--yes', '--skip-preview']);
    assert.match(up, /updated/);
    running = false;
    await Promise.all(clients);
    const deployment = await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service');
    assert.equal(deployment!.spec.template.spec.containers[0].image, rolloutRef);
    log(`rollout in ${seconds(started)} s: ${ok} requests answered, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.ok(ok > 50, `steady load ran (${ok} requests)`);
  });

  it('pulumi destroy leaves nothing of ours: no pods, no volume, no iptables rules of our Services', async () => {
    const before = await cluster.node.exec('iptables-save', []);
    assert.ok(before.includes(`${NAMESPACE}/data-service`), 'kube-proxy has our Service\'s rules before the destroy (the check below reads real rules)');
    await pulumi.ok(['destroy', '--yes']);
    await eventually('the namespace gone', async () => (await api.get('v1', 'Namespace', undefined, NAMESPACE)) === undefined, { timeoutMs: 180_000 });
    await eventually('no volume of ours', async () => (await api.request('GET', '/api/v1/persistentvolumes')).body.items.every((pv: Manifest) => pv.spec.claimRef?.namespace !== NAMESPACE), { timeoutMs: 60_000 });
    const rules = await eventually('kube-proxy to drop our Services\' rules', async () => {
      const saved = await cluster.node.exec('iptables-save', []);
      return saved.includes(`${NAMESPACE}/`) ? undefined : saved;
    }, { timeoutMs: 90_000 });
    assert.ok(rules.includes('KUBE-SERVICES'), 'kube-proxy\'s own chains are still there (the check reads real rules)');
    // The kubelet removes a deleted pod's containers (the users Job's finished one too) shortly after the pod goes.
    await eventually('no container of ours left on the node', async () => {
      const containers = await cluster.node.ctr(['containers', 'list']);
      return !/data-service|mongo-standin/.test(containers);
    }, { timeoutMs: 120_000 });
  });
});
