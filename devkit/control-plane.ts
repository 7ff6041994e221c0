/**
 * A real Kubernetes control plane on loopback, from the Go module proxy:
 * etcd 3.6 and kube-apiserver, kube-controller-manager and kube-scheduler 1.34,
 * plus kwok's controller with one fake node, built once per machine into
 * ~/.cache/koa-mongodb (devkit/go/etcd, devkit/go/kube, devkit/go/kwok). The API server,
 * admission, defaulting, strict field validation, the controllers and the
 * scheduler are the real ones; kwok plays the kubelet, so pods turn Running
 * and Ready without any container being started.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureGoTool } from './go-build';
import { KubeClient } from './kube';
import { GO_MODULES, cacheEntry } from './paths';
import { freePort } from './ports';
import { supervise, waitReady, type Supervised } from './supervisor';

export const KUBE_VERSION = 'v1.34.4';
export const CONTEXT = 'koa-local';
export const NODE_NAME = 'kwok-node-0';
const FAKE_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** Builds (if needed) and returns the paths of etcd and the Kubernetes binaries. */
export function ensureControlPlaneBinaries(log: (line: string) => void = console.log, withKwok = true): Record<'etcd' | 'apiserver' | 'controllerManager' | 'scheduler' | 'kwok', string> {
  const module = (name: string) => path.join(GO_MODULES, name);
  const [etcd] = ensureGoTool(
    { what: 'etcd', firstBuild: 'several minutes', into: { dir: cacheEntry('etcd', ['etcd']), names: ['etcd'] }, build: { cwd: module('etcd'), packages: ['.'] } },
    log,
  );
  const stamp = `-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34`;
  const [apiserver, controllerManager, scheduler] = ensureGoTool(
    {
      what: `kube-apiserver, kube-controller-manager and kube-scheduler ${KUBE_VERSION}`,
      firstBuild: 'several minutes',
      into: { dir: cacheEntry('kube', ['kube']), names: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'] },
      build: { cwd: module('kube'), packages: ['./kube-apiserver', './kube-controller-manager', './kube-scheduler'], ldflags: stamp },
    },
    log,
  );
  const kwokEntry = { dir: cacheEntry('kwok', ['kwok']), names: ['kwok'] };
  const [kwok] = withKwok
    ? ensureGoTool({ what: 'kwok', firstBuild: 'several minutes', into: kwokEntry, build: { cwd: module('kwok'), packages: ['sigs.k8s.io/kwok/cmd/kwok'] } }, log)
    : [path.join(kwokEntry.dir, 'kwok')];
  return { kwok, etcd, apiserver, controllerManager, scheduler };
}

export interface ControlPlane {
  server: string;
  /** A kubeconfig with one context, CONTEXT, as an admin. */
  kubeconfig: string;
  dir: string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Start kwok and its fake node (default true); false when a real node (devkit/node) joins instead. */
  kwok?: boolean;
  /** Extra kube-apiserver flags, after (so overriding) the defaults: a real node's certificates and address. */
  apiServerArgs?: string[];
}

/** Starts etcd, the API server, the controller manager and the scheduler on free loopback ports. */
export async function startControlPlane(log: (line: string) => void = console.log, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = ensureControlPlaneBinaries(log, options.kwok !== false);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'koa-control-plane-'));
  const daemons: Supervised[] = [];
  const run = (name: string, file: string, args: string[]) => {
    const daemon = supervise(name, file, { args, logFile: path.join(dir, `${name}.log`) });
    daemons.push(daemon);
    return daemon;
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const daemon of daemons.reverse()) await daemon.stop(10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return await start();
  } catch (error) {
    await stop(); // nothing left running after a failed start
    throw error;
  }

  async function start(): Promise<ControlPlane> {
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcd = run('etcd', bin.etcd, [
      '--data-dir', path.join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${etcdClient}`,
      '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster', `default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync', // a throw-away test cluster: speed over durability
    ]);
    await waitReady(etcd, async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`)).ok, { timeoutMs: 30_000 });

    // Credentials made fresh for each run: a static admin token and the service-account key pair.
    const token = randomBytes(24).toString('hex');
    writeFileSync(path.join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(path.join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(path.join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = run('kube-apiserver', bin.apiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'certs')}`, // self-signed serving certificate
      `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--service-node-port-range=30000-32767',
      '--allow-privileged=true',
      ...(options.apiServerArgs ?? []),
    ]);

    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: ${CONTEXT}`,
        '  cluster:',
        `    server: ${server}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: admin',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        `- name: ${CONTEXT}`,
        '  context:',
        `    cluster: ${CONTEXT}`,
        '    user: admin',
        `current-context: ${CONTEXT}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

    const api = KubeClient.fromKubeconfig(kubeconfig);
    const ready = async () => (await api.request('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200;
    await waitReady(apiserver, ready, { timeoutMs: 90_000 });

    run('kube-controller-manager', bin.controllerManager, [
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${path.join(dir, 'sa.key')}`,
      '--use-service-account-credentials=false',
      // Pods' kube-root-ca.crt: the self-signed serving certificate (with its CA) the API server wrote.
      `--root-ca-file=${path.join(dir, 'certs', 'apiserver.crt')}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      // kwok's node heartbeat comes every 20-25 s (its node-heartbeat stage's delay and jitter), and on a busy
      // 2-core machine it lapsed past the 50 s default: every pod was marked NotReady mid-test (two CI runs,
      // seen as "NodeNotReady" events). No test here is about a node going away.
      ...(options.kwok !== false ? ['--node-monitor-grace-period=10m'] : []),
    ]);
    run('kube-scheduler', bin.scheduler, [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--secure-port=0']);

    if (options.kwok !== false) {
      // kwok fakes a node and the lifecycle of the pods placed on it (scheduled → Running → Ready),
      // so Deployments and StatefulSets really roll out. Nothing runs: containers are never started.
      const kwok = run('kwok', bin.kwok, [
        `--kubeconfig=${kubeconfig}`,
        `--manage-nodes-with-annotation-selector=${FAKE_NODE_ANNOTATION}=fake`,
        '--cidr=10.244.0.1/24',
        '--node-ip=10.244.0.1',
        `--server-address=127.0.0.1:${await freePort()}`,
      ]);
      const created = await api.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: NODE_NAME,
          annotations: { [FAKE_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: { 'kubernetes.io/hostname': NODE_NAME, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', type: 'kwok' },
        },
      });
      if (created.status !== 201) throw new Error(`creating the kwok node failed (${created.status}): ${created.body.message}`);
      await waitReady(
        kwok,
        async () => {
          const node = await api.get('v1', 'Node', undefined, NODE_NAME);
          return node?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True') ?? false;
        },
        { what: 'the kwok node to be Ready', timeoutMs: 60_000 },
      );
    }

    return { server, kubeconfig, dir, stop };
  }
}
