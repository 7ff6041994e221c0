import assert from 'node:assert/strict';
import { manifests, matches, plain, type Declared } from './harness';
import { runStack, type ResolvedOutputs } from './fixtures';
import { REGISTRY_PASSWORD, STACK_VARIANTS, secretsFor } from './stack-variants';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Properties that must hold between resources, in every mode the stack supports. */
for (const [variant, overrides] of Object.entries(STACK_VARIANTS) as Array<[string, Record<string, string>]>) {
  describe(`cross-resource invariants: ${variant}`, () => {
    let resources: Declared[];
    let objects: Manifest[];
    let outputs: ResolvedOutputs;
    const secrets = secretsFor(overrides);

    before(async () => {
      const result = await runStack(overrides, secrets);
      resources = result.resources;
      outputs = result.resolved;
      objects = manifests(resources);
    });

    const workloads = () => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    /** Every pod template: the workloads' and the MongoDB users Job's. */
    const podSpecs = () => [...workloads(), ...objects.filter((o) => o.kind === 'Job')].map((w) => w.spec.template.spec);

    it('every workload\'s selector matches its own pod template labels', () => {
      assert.equal(workloads().length, 2);
      for (const workload of workloads()) {
        assert.ok(matches(workload.spec.selector.matchLabels, workload.spec.template.metadata.labels), workload.metadata.name);
      }
    });

    it('every Service selects pods of exactly one workload and targets a real container port', () => {
      for (const service of objects.filter((o) => o.kind === 'Service')) {
        const selected = workloads().filter((w) => matches(service.spec.selector, w.spec.template.metadata.labels));
        assert.equal(selected.length, 1, `${service.metadata.name} selects one workload`);
        const ports = selected[0].spec.template.spec.containers.flatMap((c: Manifest) => c.ports ?? []);
        for (const port of service.spec.ports) {
          const target = port.targetPort;
          assert.ok(
            ports.some((p: Manifest) => p.name === target || p.containerPort === target),
            `${service.metadata.name} targets ${target}, a declared container port`,
          );
        }
      }
    });

    it('every secretKeyRef names a declared Secret and one of its keys', () => {
      const secretsByName = new Map(objects.filter((o) => o.kind === 'Secret').map((s) => [s.metadata.name, Object.keys({ ...s.data, ...s.stringData })]));
      const refs = podSpecs().flatMap((pod) => [...(pod.initContainers ?? []), ...pod.containers]).flatMap((c: Manifest) => c.env ?? []).filter((e: Manifest) => e.valueFrom?.secretKeyRef);
      assert.ok(refs.length >= 6);
      for (const { name, valueFrom } of refs) {
        const keys = secretsByName.get(valueFrom.secretKeyRef.name);
        assert.ok(keys, `${name}: Secret ${valueFrom.secretKeyRef.name} is declared`);
        assert.ok(keys.includes(valueFrom.secretKeyRef.key), `${name}: key ${valueFrom.secretKeyRef.key} exists`);
      }
    });

    it('every volume a pod mounts is declared, and every claim and ConfigMap it names exists', () => {
      const claims = objects.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name);
      const configMaps = objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
      for (const pod of podSpecs()) {
        const volumes = new Map((pod.volumes ?? []).map((v: Manifest) => [v.name, v]));
        for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
          for (const mount of container.volumeMounts ?? []) assert.ok(volumes.has(mount.name), `volume ${mount.name}`);
        }
        for (const volume of volumes.values() as Iterable<Manifest>) {
          if (volume.persistentVolumeClaim) assert.ok(claims.includes(volume.persistentVolumeClaim.claimName));
          if (volume.configMap) assert.ok(configMaps.includes(volume.configMap.name));
        }
      }
    });

    it('the service\'s MongoDB URI host is the MongoDB Service\'s DNS name', () => {
      const deployment = objects.find((o) => o.kind === 'Deployment')!;
      const uri = deployment.spec.template.spec.containers[0].env.find((e: Manifest) => e.name === 'MONGODB_URI').value as string;
      const mongoService = objects.find((o) => o.kind === 'Service' && o.spec.clusterIP === 'None')!;
      assert.equal(new URL(uri).hostname, `${mongoService.metadata.name}.${mongoService.metadata.namespace}.svc.cluster.local`);
      assert.equal(new URL(uri).port, String(mongoService.spec.ports[0].port));
      assert.equal(outputs.mongoHost, new URL(uri).hostname);
    });

    it('the HPA targets the Deployment that exists', () => {
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!;
      const deployment = objects.find((o) => o.kind === 'Deployment')!;
      assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
      assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
    });

    it('no image runs as :latest or unpinned', () => {
      for (const pod of podSpecs()) {
        for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
          assert.match(container.image, /(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/, container.image);
          assert.doesNotMatch(container.image, /:latest$/);
        }
      }
    });

    it('secret config values appear only in Secrets (and the registry login), never in plain outputs', async () => {
      for (const value of Object.values(secrets)) {
        for (const resource of resources) {
          const text = JSON.stringify(plain(resource.inputs));
          if (!text.includes(value)) continue;
          const allowed = resource.type === 'kubernetes:core/v1:Secret' || (resource.type === 'docker:index/image:Image' && value === REGISTRY_PASSWORD);
          assert.ok(allowed, `${value} found in ${resource.type} ${resource.name}`);
          if (resource.type === 'docker:index/image:Image') {
            assert.match(JSON.stringify(resource.inputs.registry), /4dabf18193072939515e22adb298388d/, 'the registry password is passed as a secret');
          }
        }
        assert.ok(!JSON.stringify(outputs).includes(value), 'not in stack outputs');
      }
    });
  });
}
