/**
 * `npm run test:node`: the real one-node cluster of devkit/node (containerd, runc,
 * kubelet, kube-proxy, CoreDNS, metrics-server) joined to the local control plane,
 * and what a workload needs from it: a pod from an image made here runs, a Service
 * name resolves from a pod, a NodePort answers from the host, metrics-server reports
 * the pod's CPU, a claim of the default class `standard` is provisioned, and stop()
 * leaves the host as it found it. Needs root (namespaces, cgroups, iptables).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KUBE_VERSION } from '../../devkit/control-plane';
import { KubeClient } from '../../devkit/kube';
import { eventually } from '../../devkit/wait';
import { IMAGES } from '../../devkit/node/addons';
import { NODE_NAME, startNodeCluster, type LocalNode } from '../../devkit/node/node';
import { LINK } from '../../devkit/node/namespace';
import { ensureNodeBinaries } from '../../devkit/node/binaries';
import { writeScratchImage } from '../../devkit/node/oci-image';
import { sweepStaleNodes } from '../../devkit/node/teardown';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NS = 'node-smoke';
const SYSCTLS = ['kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory'];

describe('a real node joined to the local control plane', function () {
  this.timeout(30 * 60_000); // a machine's first run builds the kubelet, kube-proxy and the addons
  let cluster: Awaited<ReturnType<typeof startNodeCluster>>;
  let node: LocalNode;
  let api: KubeClient;
  let sysctlsBefore: string[] = [];

  const call = async (method: string, path: string, body?: unknown, expect = [200, 201]) => {
    const res = await api.request(method, path, body);
    if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${res.body.message ?? ''}`);
    return res.body as Manifest;
  };
  const pod = (name: string) => call('GET', `/api/v1/namespaces/${NS}/pods/${name}`);

  before(async function () {
    assert.equal(process.getuid?.(), 0, 'the node needs root: run npm run test:node as root');
    // The host as found: once a node left behind by a killed run (if any) is cleaned up.
    await sweepStaleNodes((line) => console.log(`      ${line}`));
    sysctlsBefore = SYSCTLS.map((name) => readFileSync(`/proc/sys/${name}`, 'utf8'));
    const started = Date.now();
    cluster = await startNodeCluster((line) => console.log(`      ${line}`));
    node = cluster.node;
    api = KubeClient.fromKubeconfig(cluster.plane.kubeconfig);
    console.log(`      cluster with a real node up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('registers the node Ready, with its own IP and the kubelet built here', async () => {
    const object = await call('GET', `/api/v1/nodes/${NODE_NAME}`);
    assert.equal(object.status.conditions.find((c: Manifest) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(object.status.addresses.find((a: Manifest) => a.type === 'InternalIP'), { type: 'InternalIP', address: node.nodeIp });
    assert.equal(object.status.nodeInfo.kubeletVersion, KUBE_VERSION);
    assert.match(object.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
    assert.notEqual(node.nodeIp, '127.0.0.1');
  });

  let nodePort = 0;
  let clusterIp = '';
  const IMPORTED = 'localhost/node-smoke/echo:imported';
  it('runs a pod from an image archive imported into the node (by digest), behind a NodePort Service', async () => {
    const archive = path.join(node.dir, 'echo-image.tar');
    // Its own config (env), so its image ID differs from the node's own nettool image with the same binary.
    writeScratchImage({ name: IMPORTED, files: { '/nettool': ensureNodeBinaries(() => undefined).nettool }, entrypoint: ['/nettool'], env: ['PATH=/', 'SMOKE=imported'] }, archive);
    const references = await node.importImage(archive);
    assert.equal(references[0], IMPORTED);
    assert.match(references[1], /^localhost\/node-smoke\/echo@sha256:[0-9a-f]{64}$/);
    const labels = { app: 'echo' };
    await call('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'echo', namespace: NS },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'echo',
                image: references[1], // by digest, as a registry's image would be named
                imagePullPolicy: 'Never',
                args: ['serve', ':8080'],
                ports: [{ containerPort: 8080 }],
                readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
                resources: { requests: { cpu: '100m', memory: '16Mi' } },
              },
            ],
          },
        },
      },
    });
    const service = await call('POST', `/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { type: 'NodePort', selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
    });
    nodePort = service.spec.ports[0].nodePort;
    clusterIp = service.spec.clusterIP;
    const ready = await eventually(
      'the echo pod to be Running and Ready',
      async () => {
        const pods = await call('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Decho`);
        return pods.items.find((p: Manifest) => p.status.phase === 'Running' && p.status.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True'));
      },
      { timeoutMs: 120_000, everyMs: 500 },
    );
    assert.equal(ready.spec.nodeName, NODE_NAME);
    assert.match(ready.status.podIP, /^10\.244\.0\./);
    assert.equal(ready.status.containerStatuses[0].imageID, references[1]);
  });

  it('resolves Service names through CoreDNS from a pod (short name and FQDN)', async () => {
    const resolve = async (name: string, target: string) => {
      await call('POST', `/api/v1/namespaces/${NS}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: NS },
        spec: { restartPolicy: 'Never', containers: [{ name: 'resolve', image: IMAGES.nettool, imagePullPolicy: 'Never', args: ['resolve', target] }] },
      });
      const done = await eventually(`pod ${name} to finish`, async () => ['Succeeded', 'Failed'].includes((await pod(name)).status.phase) && pod(name), { timeoutMs: 90_000, everyMs: 500 });
      // The log comes through the API server from the kubelet (its client certificate at work).
      const log = await api.request('GET', `/api/v1/namespaces/${NS}/pods/${name}/log`);
      assert.equal(done.status.phase, 'Succeeded', `resolving ${target} failed: ${log.body.message}`);
      return log.body.message as string;
    };
    assert.equal((await resolve('resolve-short', 'echo')).trim(), clusterIp);
    assert.equal((await resolve('resolve-fqdn', `echo.${NS}.svc.cluster.local`)).trim(), clusterIp);
    assert.equal((await resolve('resolve-api', 'kubernetes.default')).trim(), '10.96.0.1');
  });

  it('answers on the NodePort at the node IP from the host, through kube-proxy', async () => {
    const res = await fetch(`http://${node.nodeIp}:${nodePort}/`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^hello from echo-/);
  });

  it('reports the pod\'s CPU through metrics-server (metrics.k8s.io)', async () => {
    const usage = await eventually(
      'pod CPU from metrics.k8s.io',
      async () => {
        // Real CPU work in the pod, so the figure is not just an idle process's.
        await fetch(`http://${node.nodeIp}:${nodePort}/burn?ms=300`, { signal: AbortSignal.timeout(5000) });
        const res = await api.request('GET', `/apis/metrics.k8s.io/v1beta1/namespaces/${NS}/pods`);
        const item = (res.body.items ?? []).find((p: Manifest) => p.metadata.name.startsWith('echo-'));
        const cpu = item?.containers?.[0]?.usage?.cpu as string | undefined;
        return cpu && cpu !== '0' ? cpu : undefined;
      },
      { timeoutMs: 240_000, everyMs: 2000 }, // metrics-server scrapes every 60 s (Minikube's setting) and needs two samples
    );
    console.log(`      echo pod CPU: ${usage}`);
    assert.match(usage, /^\d+[nmu]?$/);
    const nodes = await call('GET', '/apis/metrics.k8s.io/v1beta1/nodes');
    assert.equal(nodes.items[0]?.metadata.name, NODE_NAME);
  });

  it('provisions a claim of the default StorageClass `standard` and deletes its volume with it', async () => {
    const standard = await call('GET', '/apis/storage.k8s.io/v1/storageclasses/standard');
    assert.equal(standard.metadata.annotations['storageclass.kubernetes.io/is-default-class'], 'true');
    await call('POST', `/api/v1/namespaces/${NS}/persistentvolumeclaims`, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: NS },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
    const bound = await eventually('the claim to be Bound', async () => {
      const claim = await call('GET', `/api/v1/namespaces/${NS}/persistentvolumeclaims/data`);
      return claim.status.phase === 'Bound' && claim;
    });
    assert.equal(bound.spec.storageClassName, 'standard');
    const volume = await call('GET', `/api/v1/persistentvolumes/${bound.spec.volumeName}`);
    assert.ok(existsSync(volume.spec.hostPath.path), `${volume.spec.hostPath.path} exists`);
    await call('DELETE', `/api/v1/namespaces/${NS}/persistentvolumeclaims/data`);
    await eventually('the released volume to be deleted', async () => (await api.request('GET', `/api/v1/persistentvolumes/${bound.spec.volumeName}`)).status === 404);
    assert.equal(existsSync(volume.spec.hostPath.path), false);
  });

  it('stops and leaves the host as it found it', async () => {
    const cgroupRoot = readFileSync(`${node.dir}/kubelet.yaml`, 'utf8').match(/cgroupRoot: (\S+)/)![1];
    await cluster.stop();
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!links.includes(LINK.hostDevice), `${LINK.hostDevice} is gone`);
    assert.equal(execFileSync('ip', ['-4', 'route', 'show', 'match', '10.244.0.0/24'], { encoding: 'utf8' }).split('\n').filter((l) => l && !l.startsWith('default')).length, 0);
    assert.deepEqual(SYSCTLS.map((name) => readFileSync(`/proc/sys/${name}`, 'utf8')), sysctlsBefore);
    for (const hierarchy of ['cpu', 'memory', 'pids', 'systemd']) assert.equal(existsSync(`/sys/fs/cgroup/${hierarchy}${cgroupRoot}`), false, `${hierarchy}${cgroupRoot} removed`);
    assert.equal(existsSync(node.dir), false);
    const leftovers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(node.dir) || line.includes(LINK.host) || /containerd-shim.*k8s\.io/.test(line));
    assert.deepEqual(leftovers, []);
  });
});
