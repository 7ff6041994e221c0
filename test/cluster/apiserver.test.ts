/**
 * `npm run test:cluster`: every object the Pulumi program declares, sent to a
 * real kube-apiserver 1.34 (etcd 3.6, controller manager and scheduler, built
 * from the Go module proxy; see devkit/control-plane.ts) with strict field
 * validation, then read back, and the controllers' reaction checked. Stronger
 * than the OpenAPI check in test/infra: the API server's own validation,
 * admission, defaulting and allocation (node ports, cluster IPs) run.
 *
 * kwok plays the kubelet of one fake node, so pods are scheduled and turn Ready
 * (no container runs). engine.test.ts runs the Pulumi engine on the same setup.
 */
import assert from 'node:assert/strict';
import { NODE_NAME, startControlPlane, type ControlPlane } from '../../devkit/control-plane';
import { DEV_SECRETS, manifests } from '../infra/harness';
import { runStack } from '../infra/fixtures';
import { STACK_VARIANTS, secretsFor } from '../infra/stack-variants';
import { KubeClient } from '../../devkit/kube';
import { eventually } from '../../devkit/wait';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ORDER = ['Namespace', 'Secret', 'PersistentVolume', 'PersistentVolumeClaim', 'Service', 'StatefulSet', 'Job', 'CronJob', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy'];
const byDependency = (a: Manifest, b: Manifest) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind);

/** Shared stack modes, paired up, each in a namespace of its own on the one API server. */
const VARIANTS: Record<string, Record<string, string>> = {
  dev: STACK_VARIANTS.dev,
  'registry push, LoadBalancer': { ...STACK_VARIANTS['registry push'], ...STACK_VARIANTS['LoadBalancer service'], namespace: 'koa-registry' },
  'static volume, fixed node port': { ...STACK_VARIANTS['static hostPath volume'], ...STACK_VARIANTS['fixed node port'], namespace: 'koa-static' },
};

describe('the program\'s objects on a real API server', function () {
  this.timeout(30 * 60_000); // the first run on a machine builds the control plane
  let plane: ControlPlane;
  let api: KubeClient;

  before(async () => {
    const started = Date.now();
    plane = await startControlPlane((line) => console.log(`      ${line}`));
    api = KubeClient.fromKubeconfig(plane.kubeconfig);
    console.log(`      control plane up at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
  after(() => plane?.stop());

  for (const [variant, overrides] of Object.entries(VARIANTS)) {
    describe(variant, () => {
      let declared: Manifest[];
      const live = new Map<string, Manifest>();
      const key = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
      const namespace = overrides.namespace ?? 'koa-mongodb';

      before(async () => {
        const { resources } = await runStack(overrides, secretsFor(overrides));
        declared = manifests(resources).sort(byDependency);
      });

      it('accepts every object with strict field validation and no deprecation warnings', async () => {
        const warnings: string[] = [];
        for (const manifest of declared) {
          const created = await api.create(manifest);
          live.set(key(manifest), created.object);
          warnings.push(...created.warnings.map((warning) => `${key(manifest)}: ${warning}`));
        }
        assert.equal(live.size, declared.length);
        assert.deepEqual(warnings, [], 'no deprecated API or field');
        const res = await api.request('POST', `${await api.path('v1', 'ConfigMap', namespace)}?fieldValidation=Strict`, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'typo-check' },
          dataa: {},
        });
        assert.equal(res.status, 400, 'the same path refuses an unknown field (the check is real)');
      });

      it('stores what was declared, with the server\'s allocations', async () => {
        const deployment = live.get('Deployment/data-service')!;
        const declaredDeployment = declared.find((m) => m.kind === 'Deployment')!;
        assert.equal(deployment.spec.template.spec.containers[0].image, declaredDeployment.spec.template.spec.containers[0].image);
        assert.deepEqual(deployment.spec.template.spec.containers[0].env, declaredDeployment.spec.template.spec.containers[0].env);
        assert.equal(deployment.spec.template.spec.securityContext.runAsUser, 1000);

        const service = live.get('Service/data-service')!;
        assert.match(service.spec.clusterIP, /^10\.96\./);
        if (service.spec.type !== 'ClusterIP') {
          const nodePort = service.spec.ports[0].nodePort as number;
          assert.ok(nodePort >= 30000 && nodePort <= 32767, `node port ${nodePort} allocated`);
          if (overrides.nodePort) assert.equal(nodePort, Number(overrides.nodePort));
        }
        assert.equal(live.get('Service/mongodb')!.spec.clusterIP, 'None');
        assert.equal(live.get('StatefulSet/mongodb')!.spec.serviceName, 'mongodb');

        const secret = await api.get('v1', 'Secret', namespace, 'mongodb-credentials');
        assert.deepEqual(Object.keys(secret!.data).sort(), ['app-password', 'app-username', 'backup-password', 'backup-username', 'root-password', 'root-username']);
        assert.equal(Buffer.from(secret!.data['app-password'], 'base64').toString(), DEV_SECRETS.mongoAppPassword);
      });

      it('the controllers act on it: ReplicaSet, pods scheduled and Ready on the (kwok) node, PDB status', async () => {
        const replicaSets = await eventually('a ReplicaSet', async () => {
          const list = await api.list('apps/v1', 'ReplicaSet', namespace);
          return list.length > 0 ? list : undefined;
        });
        assert.equal(replicaSets[0].spec.replicas, 2);
        const isReady = (pod: Manifest) => pod.status?.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True');
        const servicePods = await eventually('two Ready data-service pods', async () => {
          const list = (await api.list('v1', 'Pod', namespace)).filter((p) => p.metadata.name.startsWith('data-service-'));
          return list.length === 2 && list.every(isReady) ? list : undefined;
        });
        for (const pod of servicePods) assert.equal(pod.spec.nodeName, NODE_NAME);
        const mongo = await eventually('mongodb-0', () => api.get('v1', 'Pod', namespace, 'mongodb-0'));
        assert.equal(mongo.spec.securityContext.runAsUser, 999);
        assert.equal(mongo.spec.volumes.find((v: Manifest) => v.name === 'data').persistentVolumeClaim.claimName, 'mongodb-data');
        if (overrides.mongoStaticVolume) {
          await eventually('mongodb-0 Ready on its bound volume', async () => {
            const pod = await api.get('v1', 'Pod', namespace, 'mongodb-0');
            return pod && isReady(pod) ? pod : undefined;
          });
        } else {
          // No storage provisioner runs here: the scheduler holds the pod until its claim is bound, and says so.
          const verdict = await eventually('the scheduler\'s verdict on mongodb-0', async () => {
            const pod = await api.get('v1', 'Pod', namespace, 'mongodb-0');
            return pod?.status?.conditions?.find((c: Manifest) => c.type === 'PodScheduled' && c.status === 'False');
          });
          assert.match(verdict.message, /unbound.*PersistentVolumeClaim|PersistentVolumeClaim.*not found|unbound immediate/i);
        }
        const pdb = await eventually('PDB status', async () => {
          const current = await api.get('policy/v1', 'PodDisruptionBudget', namespace, 'data-service');
          return current?.status?.currentHealthy === 2 ? current : undefined;
        });
        assert.equal(pdb.status.disruptionsAllowed, 1);
        const endpoints = await eventually('the Service\'s endpoints', async () => {
          const slices = await api.request('GET', `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Ddata-service`);
          const addresses = ((slices.body.items as Manifest[]) ?? []).flatMap((slice) => (slice.endpoints ?? []).filter((e: Manifest) => e.conditions?.ready));
          return addresses.length === 2 ? addresses : undefined;
        });
        assert.equal(endpoints.length, 2);
      });

      if (overrides.mongoStaticVolume) {
        it('binds the claim to the static volume', async () => {
          const claim = await eventually('the claim to bind', async () => {
            const pvc = await api.get('v1', 'PersistentVolumeClaim', namespace, 'mongodb-data');
            return pvc?.status?.phase === 'Bound' ? pvc : undefined;
          });
          assert.equal(claim.spec.volumeName, `${namespace}-mongodb-data`);
        });
      }
    });
  }
});
