/**
 * `npm run test:node`: the stack's own NetworkPolicy, enforced on the real node of
 * devkit/node (kube-router's network policy controller, devkit/node/netpol.ts). The
 * objects come from the Pulumi program itself, run under mocks as test/infra and
 * test/cluster run it: its NetworkPolicy and its Services `mongodb` and
 * `data-service`, and the pod labels of its StatefulSet, Deployment, Jobs and backup CronJob. A
 * listener pod wears MongoDB's labels and answers on 27017; one-shot pods dial
 * `mongodb:27017` wearing each client's labels (admitted) or none (refused), and the
 * data service's NodePort still answers from the host. Needs root.
 */
import assert from 'node:assert/strict';
import { IMAGES } from '../../devkit/node/addons';
import { startNodeCluster } from '../../devkit/node/node';
import { KubeClient } from '../../devkit/kube';
import { eventually } from '../../devkit/wait';
import { sweepStaleNodes } from '../../devkit/node/teardown';
import { manifests } from '../infra/harness';
import { runStack } from '../infra/fixtures';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** How long one dial may take: nettool's HTTP client gives up after 10 s; a pod's start adds a few. */
const DIAL_TIMEOUT_MS = 60_000;

describe('the stack\'s NetworkPolicy on a real node', function () {
  this.timeout(30 * 60_000); // a machine's first run builds the node and kube-router
  let cluster: Awaited<ReturnType<typeof startNodeCluster>>;
  let api: KubeClient;
  let declared: Manifest[];
  let ns: string;
  let dials = 0;

  const find = (kind: string, name?: string) => {
    const found = declared.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
    assert.ok(found.length > 0, `the program declares a ${kind}${name ? ` ${name}` : ''}`);
    return found;
  };
  const call = async (method: string, path: string, body?: unknown, expect = [200, 201]) => {
    const res = await api.request(method, path, body);
    if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${res.body.message ?? ''}`);
    return res.body as Manifest;
  };
  const ready = (name: string) =>
    eventually(
      `pod ${name} to be Ready`,
      async () => {
        const pod = await call('GET', `/api/v1/namespaces/${ns}/pods/${name}`);
        return pod.status.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True') && pod;
      },
      { timeoutMs: 120_000, everyMs: 500 },
    );
  const listener = async (name: string, labels: Record<string, string>, port: { name: string; containerPort: number }) => {
    await call('POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels },
      spec: {
        containers: [
          {
            name: 'listen',
            image: IMAGES.nettool,
            imagePullPolicy: 'Never',
            args: ['serve', `:${port.containerPort}`],
            ports: [{ ...port, protocol: 'TCP' }],
            readinessProbe: { tcpSocket: { port: port.containerPort }, periodSeconds: 1 },
          },
        ],
      },
    });
    return ready(name);
  };

  /**
   * A one-shot pod with `labels` that opens mongodb:27017 (an HTTP GET to the listener); its outcome and log.
   * `retry`: the kubelet restarts a failed dial (OnFailure, after its 10 s back-off) in the same pod, with the
   * same IP, as the stack's clients retry (the service's driver, the Jobs' backoffLimit): a new pod's first
   * packets can come before kube-router has put its IP into the policy's ipset (it syncs on the pod's update).
   */
  const dial = async (labels: Record<string, string>, retry = false): Promise<{ ok: boolean; log: string; ms: number; restarts: number }> => {
    const name = `dial-${++dials}`;
    const started = Date.now();
    await call('POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels },
      spec: {
        restartPolicy: retry ? 'OnFailure' : 'Never',
        containers: [{ name: 'dial', image: IMAGES.nettool, imagePullPolicy: 'Never', args: ['get', 'http://mongodb:27017/'] }],
      },
    });
    const done = await eventually(
      `pod ${name} to finish`,
      async () => {
        const pod = await call('GET', `/api/v1/namespaces/${ns}/pods/${name}`);
        return ['Succeeded', 'Failed'].includes(pod.status.phase) && pod;
      },
      { timeoutMs: DIAL_TIMEOUT_MS, everyMs: 250 },
    );
    const log = (await api.request('GET', `/api/v1/namespaces/${ns}/pods/${name}/log`)).body.message as string;
    const restarts = (done.status.containerStatuses?.[0]?.restartCount as number | undefined) ?? 0;
    return { ok: done.status.phase === 'Succeeded', log: log.trim(), ms: Date.now() - started, restarts };
  };
  /** Admitted: the dial reaches the listener (its pod retrying, see dial). */
  const admitted = async (who: string, labels: Record<string, string>) => {
    const result = await dial(labels, true);
    assert.ok(result.ok, `${who} must reach mongodb:27017, but got: ${result.log}`);
    assert.match(result.log, /^hello from mongodb-0/);
    console.log(`      ${who}: reached mongodb:27017 in ${result.ms} ms (${result.restarts} dial(s) refused before)`);
    return result;
  };
  const refused = async (who: string, labels: Record<string, string>) => {
    const result = await dial(labels);
    assert.equal(result.ok, false, `${who} must not reach mongodb:27017, but got: ${result.log}`);
    // kube-router REJECTs (connection refused at once); a dropping enforcer would time out instead.
    assert.match(result.log, /connection refused|i\/o timeout|deadline exceeded|no route to host/, result.log);
    return result;
  };

  before(async function () {
    assert.equal(process.getuid?.(), 0, 'the node needs root: run npm run test:node as root');
    const { resources, resolved } = await runStack();
    declared = manifests(resources);
    ns = resolved.namespace;
    await sweepStaleNodes((line) => console.log(`      ${line}`));
    const started = Date.now();
    cluster = await startNodeCluster((line) => console.log(`      ${line}`));
    api = KubeClient.fromKubeconfig(cluster.plane.kubeconfig);
    console.log(`      cluster with a real node up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  });

  after(async () => {
    await cluster?.stop();
  });

  let policy: Manifest;
  let mongoLabels: Record<string, string>;
  let serviceLabels: Record<string, string>;
  let jobs: Array<{ name: string; labels: Record<string, string> }>;

  it('finds the policy and the pods\' labels in the program', () => {
    [policy] = find('NetworkPolicy');
    const [statefulSet] = find('StatefulSet', 'mongodb');
    const [deployment] = find('Deployment', 'data-service');
    mongoLabels = statefulSet.spec.template.metadata.labels;
    serviceLabels = deployment.spec.template.metadata.labels;
    // Every Job the program declares talks to MongoDB (users, retire-users), and so do the backup CronJob's.
    jobs = [
      ...find('Job').map((job) => ({ name: job.metadata.name, labels: job.spec.template.metadata.labels })),
      ...declared.filter((m) => m.kind === 'CronJob').map((cron) => ({ name: cron.metadata.name, labels: cron.spec.jobTemplate.spec.template.metadata.labels })),
    ];
    assert.ok(jobs.some((job) => job.name === 'mongodb-users'));
    assert.ok(jobs.some((job) => job.name === 'mongodb-backups'), 'the backup CronJob\'s pods are among the clients');
    assert.deepEqual(policy.spec.podSelector.matchLabels, Object.fromEntries(Object.entries(mongoLabels).filter(([key]) => key in policy.spec.podSelector.matchLabels)));
    assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
  });

  it('runs a listener with MongoDB\'s labels behind the program\'s Service `mongodb`, open to anyone before the policy', async () => {
    const [service] = find('Service', 'mongodb');
    const [statefulSet] = find('StatefulSet', 'mongodb');
    const port = statefulSet.spec.template.spec.containers[0].ports[0];
    await api.create(service);
    await listener('mongodb-0', mongoLabels, { name: port.name, containerPort: port.containerPort });
    await eventually('the mongodb Service\'s endpoints', async () => {
      const slices = await call('GET', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dmongodb`);
      return slices.items.some((slice: Manifest) => (slice.endpoints ?? []).some((e: Manifest) => e.conditions?.ready));
    });
    // The control: without the policy a pod with no labels gets through, so a refusal later is the policy's doing.
    const open = await dial({});
    assert.ok(open.ok, `without a policy a pod without labels reaches mongodb:27017, but got: ${open.log}`);
    assert.match(open.log, /^hello from mongodb-0/);
  });

  it('refuses a pod without the client labels once the program\'s NetworkPolicy is applied', async () => {
    await api.create(policy);
    const first = await eventually(
      'the policy to be enforced (an unlabelled pod refused)',
      async () => {
        const result = await dial({});
        return !result.ok && result;
      },
      { timeoutMs: 90_000, everyMs: 0 },
    );
    console.log(`      unlabelled pod: ${first.log} (${first.ms} ms)`);
    await refused('a second pod without labels', {});
    // A near miss: the stack's own labels, but another name and component.
    await refused('a pod of the same stack but another component', { ...serviceLabels, 'app.kubernetes.io/name': 'other', 'app.kubernetes.io/component': 'other' });
  });

  it('admits the data service\'s pods (its Deployment\'s labels)', async () => {
    await admitted('a pod with the data service\'s labels', serviceLabels);
  });

  it('admits every Job the program declares (users, retire-users) and the backup CronJob\'s pods', async () => {
    for (const job of jobs) await admitted(`a pod of Job ${job.name}`, job.labels);
    // And still nobody else, after the admitted pods came and went.
    await refused('a third pod without labels', {});
  });

  it('still answers on the data service\'s NodePort from the host (the program\'s Service, a plain pod behind it)', async () => {
    const [service] = find('Service', 'data-service');
    const [deployment] = find('Deployment', 'data-service');
    assert.equal(service.spec.type, 'NodePort');
    const port = deployment.spec.template.spec.containers[0].ports[0];
    const created = (await api.create(service)).object;
    await listener('data-service-0', serviceLabels, { name: port.name, containerPort: port.containerPort });
    const nodePort = created.spec.ports[0].nodePort as number;
    const body = await eventually(
      `http://${cluster.node.nodeIp}:${nodePort}/ to answer`,
      async () => {
        const res = await fetch(`http://${cluster.node.nodeIp}:${nodePort}/`, { signal: AbortSignal.timeout(5000) });
        return res.status === 200 && res.text();
      },
      { timeoutMs: 60_000, everyMs: 500 },
    );
    assert.match(body, /^hello from data-service-0/);
  });
});
