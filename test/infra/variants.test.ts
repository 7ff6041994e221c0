import assert from 'node:assert/strict';
import { VOLUME_PERMISSIONS } from '../../components/mongodb';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir } from '../../devkit/scratch';
import { one, optionsOf, plain, ofType } from './harness';
import { runStack } from './fixtures';

const REGISTRY = { imageMode: 'registry', imageRepository: 'docker.io/me/data-service', registryServer: 'docker.io', registryUsername: 'me' };
const SECRETS = { mongoRootPassword: 'root-pw', mongoAppPassword: 'app-pw' };

describe('Pulumi program, other modes', () => {
  it('registry mode: builds, pushes with the secret password, deploys by digest with an imagePullSecret', async () => {
    const { resources, resolved } = await runStack(REGISTRY, { ...SECRETS, registryPassword: 'tok3n' });
    const image = one(resources, 'docker:index/image:Image', 'data-service');
    assert.notEqual(image.inputs.skipPush, true, 'pushed');
    assert.match(image.inputs.imageName, /^docker\.io\/me\/data-service:[0-9a-f]{16}$/);
    assert.deepEqual(plain(image.inputs.registry), { server: 'docker.io', username: 'me', password: 'tok3n' });
    assert.equal(ofType(resources, 'pulumi:providers:docker').length, 0, 'the default docker daemon, not Minikube\'s');

    assert.match(resolved.image, /^docker\.io\/me\/data-service@sha256:[0-9a-f]{64}$/);
    const deployment = plain(one(resources, 'kubernetes:apps/v1:Deployment').inputs);
    assert.equal(deployment.spec.template.spec.containers[0].image, resolved.image);

    const pull = plain(one(resources, 'kubernetes:core/v1:Secret', 'data-service-pull').inputs);
    assert.equal(pull.type, 'kubernetes.io/dockerconfigjson');
    const auth = JSON.parse(pull.stringData['.dockerconfigjson']);
    assert.deepEqual(auth.auths['docker.io'], { username: 'me', password: 'tok3n', auth: Buffer.from('me:tok3n').toString('base64') });
    assert.deepEqual(deployment.spec.template.spec.imagePullSecrets, [{ name: 'data-service-pull' }]);

    // The admin image: beside the service's in the same registry, pushed alike, pulled with its own Secret.
    const admin = one(resources, 'docker:index/image:Image', 'data-admin');
    assert.match(admin.inputs.imageName, /^docker\.io\/me\/data-admin:[0-9a-f]{16}$/);
    assert.equal(plain(admin.inputs.build).context, path.resolve(__dirname, '..', '..', 'admin'));
    const pod = plain(one(resources, 'kubernetes:batch/v1:CronJob').inputs).spec.jobTemplate.spec.template.spec;
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'data-admin-pull' }]);
  });

  it('prebuilt mode: deploys the given references, builds nothing; the admin image runs the users Jobs and the backups', async () => {
    const { resources, resolved } = await runStack({ imageMode: 'prebuilt', image: 'ghcr.io/me/data-service:1.2.3', adminImage: 'ghcr.io/me/data-admin:1.2.3' });
    assert.equal(ofType(resources, 'docker:index/image:Image').length, 0);
    assert.equal(ofType(resources, 'pulumi-nodejs:dynamic:Resource').length, 0);
    one(resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-backups');
    const cron = plain(one(resources, 'kubernetes:batch/v1:CronJob').inputs);
    assert.equal(cron.spec.jobTemplate.spec.template.spec.containers[0].image, 'ghcr.io/me/data-admin:1.2.3');
    for (const job of ['mongodb-users', 'mongodb-retire-users']) {
      assert.equal(plain(one(resources, 'kubernetes:batch/v1:Job', job).inputs).spec.template.spec.containers[0].image, 'ghcr.io/me/data-admin:1.2.3', job);
    }
    assert.equal(resolved.image, 'ghcr.io/me/data-service:1.2.3');
    assert.equal(plain(one(resources, 'kubernetes:apps/v1:Deployment').inputs).spec.template.spec.containers[0].image, 'ghcr.io/me/data-service:1.2.3');
  });

  it('static volume mode: a hostPath PV as in the guide, bound by name, handed to uid 999 by an init container with CHOWN and DAC_READ_SEARCH only', async () => {
    const { resources } = await runStack({ mongoStaticVolume: 'true', mongoHostPath: '/data/mongo' });
    const pv = plain(one(resources, 'kubernetes:core/v1:PersistentVolume').inputs);
    const pvc = plain(one(resources, 'kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-data').inputs);
    assert.equal(pv.spec.hostPath.path, '/data/mongo');
    assert.equal(pv.spec.persistentVolumeReclaimPolicy, 'Retain');
    assert.equal(pvc.spec.volumeName, pv.metadata.name);
    assert.equal(pvc.spec.storageClassName, '', 'no dynamic provisioning');
    assert.equal(pv.spec.capacity.storage, pvc.spec.resources.requests.storage);
    const init = plain(one(resources, 'kubernetes:apps/v1:StatefulSet').inputs).spec.template.spec.initContainers;
    assert.equal(init.length, 1);
    assert.deepEqual(init[0].securityContext.capabilities, { drop: ['ALL'], add: ['CHOWN', 'DAC_READ_SEARCH'] });
    assert.deepEqual(init[0].command, VOLUME_PERMISSIONS.command, 'the command test/infra/volume-permissions.test.ts runs for real');
  });

  it('LoadBalancer type: the url is the load balancer\'s address', async () => {
    const { resources, resolved } = await runStack({ serviceType: 'LoadBalancer' });
    assert.equal(plain(one(resources, 'kubernetes:core/v1:Service', 'data-service').inputs).spec.type, 'LoadBalancer');
    assert.equal(resolved.url, 'http://10.96.0.200:5000');
  });

  it('ClusterIP type: the url is the port-forward address', async () => {
    const { resources, resolved } = await runStack({ serviceType: 'ClusterIP' });
    const service = plain(one(resources, 'kubernetes:core/v1:Service', 'data-service').inputs);
    assert.equal(service.spec.type, 'ClusterIP');
    assert.equal(service.spec.ports[0].nodePort, undefined);
    assert.equal(resolved.url, 'http://localhost:5000');
  });

  it('a fixed nodePort is passed through', async () => {
    const { resources, resolved } = await runStack({ nodePort: '30500' });
    assert.equal(plain(one(resources, 'kubernetes:core/v1:Service', 'data-service').inputs).spec.ports[0].nodePort, 30500);
    assert.equal(resolved.url, 'http://192.168.49.2:30500');
  });

  it('retainOnDelete keeps the claims (MongoDB\'s and the backups\') and the namespace that holds them', async () => {
    const { resources } = await runStack({ retainOnDelete: 'true' });
    for (const claim of ['mongodb-data', 'mongodb-backups']) assert.equal(optionsOf(one(resources, 'kubernetes:core/v1:PersistentVolumeClaim', claim)).retainOnDelete, true, claim);
    assert.notEqual(optionsOf(one(resources, 'kubernetes:batch/v1:CronJob')).retainOnDelete, true);
    assert.equal(optionsOf(one(resources, 'kubernetes:core/v1:Namespace')).retainOnDelete, true);
    assert.notEqual(optionsOf(one(resources, 'kubernetes:apps/v1:StatefulSet')).retainOnDelete, true, 'only the data is kept');
  });

  it('a built-in namespace is used, never created (so destroy can never delete it)', async () => {
    const { resources } = await runStack({ namespace: 'default' });
    assert.equal(ofType(resources, 'kubernetes:core/v1:Namespace').length, 0);
    assert.equal(plain(one(resources, 'kubernetes:apps/v1:Deployment').inputs).metadata.namespace, 'default');
  });

  it('resources, replicas and context come from config', async () => {
    const { resources } = await runStack({ kubeContext: 'kind-dev', cpuLimit: '1', memoryLimit: '1Gi', minReplicas: '3', maxReplicas: '8', targetCpuPercent: '50', mongoMemoryLimit: '1Gi' });
    assert.equal(one(resources, 'pulumi:providers:kubernetes', 'kubernetes').inputs.context, 'kind-dev');
    const container = plain(one(resources, 'kubernetes:apps/v1:Deployment').inputs).spec.template.spec.containers[0];
    assert.deepEqual(container.resources.limits, { cpu: '1', memory: '1Gi' });
    const hpa = plain(one(resources, 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler').inputs);
    assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas, hpa.spec.metrics[0].resource.target.averageUtilization], [3, 8, 50]);
    assert.equal(plain(one(resources, 'kubernetes:apps/v1:StatefulSet').inputs).spec.template.spec.containers[0].resources.limits.memory, '1Gi');
  });

  it('skipAwait marks every object in the components with pulumi.com/skipAwait, and only then', async () => {
    const annotated = (resources: Awaited<ReturnType<typeof runStack>>['resources']) =>
      resources
        .filter((r) => r.type.startsWith('kubernetes:') && r.type !== 'kubernetes:core/v1:Namespace')
        .map((r) => plain(r.inputs).metadata.annotations?.['pulumi.com/skipAwait']);
    const on = annotated((await runStack({ skipAwait: 'true' })).resources);
    assert.ok(on.length >= 10);
    assert.deepEqual(new Set(on), new Set(['true']));
    const off = annotated((await runStack()).resources);
    assert.deepEqual(new Set(off), new Set([undefined]));
  });

  describe('the url output without minikubeIp', () => {
    const kubeconfig = (server: string) => {
      const file = path.join(scratchDir('kubeconfig-'), 'config');
      writeFileSync(
        file,
        `apiVersion: v1\nkind: Config\nclusters:\n- name: minikube\n  cluster:\n    server: ${server}\ncontexts:\n- name: minikube\n  context:\n    cluster: minikube\n    user: minikube\ncurrent-context: other\nusers:\n- name: minikube\n  user: {}\n`,
      );
      return file;
    };

    it('takes the node IP from the kube context\'s API server address', async () => {
      const { resolved } = await runStack({ minikubeIp: undefined, kubeconfig: kubeconfig('https://192.168.58.2:8443') });
      assert.equal(resolved.url, 'http://192.168.58.2:31234');
    });

    it('falls back to the port-forward address when the API server is on loopback (docker driver on macOS)', async () => {
      const { resolved } = await runStack({ minikubeIp: undefined, kubeconfig: kubeconfig('https://127.0.0.1:55123') });
      assert.equal(resolved.url, 'http://localhost:5000');
    });
  });
});
