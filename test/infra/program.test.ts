import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { contextHash } from '../../components/buildContext';
import { appUserName, backupPassword } from '../../components/mongodb';
import { DEV_SECRETS, k8sResources, manifests, matches, one, optionsOf, parentOf, plain, type Declared, type Run } from './harness';
import { ROOT, runStack, type ResolvedOutputs } from './fixtures';

/** The dev stack (Pulumi.dev.yaml) as `pulumi up` would declare it. */
describe('Pulumi program, dev stack', () => {
  let resources: Declared[];
  let reads: Run<unknown>['reads'];
  let outputs: ResolvedOutputs;
  const find = (type: string, name?: string) => plain(one(resources, type, name).inputs);

  before(async () => {
    const result = await runStack();
    resources = result.resources;
    reads = result.reads;
    outputs = result.resolved;
  });

  describe('structure', () => {
    it('declares one ComponentResource per concept, with project:module:Name type tokens', () => {
      const components = resources.filter((r) => !r.custom && r.type !== 'pulumi:pulumi:Stack').map((r) => `${r.type} ${r.name}`);
      assert.deepEqual(components.sort(), [
        'koa-mongodb:database:Backups mongodb-backups',
        'koa-mongodb:database:DatabaseUsers mongodb',
        'koa-mongodb:database:MongoDb mongodb',
        'koa-mongodb:image:ServiceImage data-admin',
        'koa-mongodb:image:ServiceImage data-service',
        'koa-mongodb:service:DataService data-service',
      ]);
    });

    it('creates every Kubernetes object inside its component, except the namespace', () => {
      const byParent = new Map<string, string[]>();
      for (const resource of k8sResources(resources)) {
        const parent = parentOf(resource) ?? '(top level)';
        byParent.set(parent, [...(byParent.get(parent) ?? []), resource.type.split(':')[2]]);
      }
      assert.deepEqual(Object.fromEntries([...byParent].map(([parent, kinds]) => [parent, kinds.sort()])), {
        '(top level)': ['Namespace'],
        'koa-mongodb:database:Backups::mongodb-backups': ['CronJob', 'PersistentVolumeClaim'],
        'koa-mongodb:database:DatabaseUsers::mongodb': ['Job', 'Job'],
        'koa-mongodb:database:MongoDb::mongodb': ['NetworkPolicy', 'PersistentVolumeClaim', 'Secret', 'Service', 'StatefulSet'],
        'koa-mongodb:service:DataService::data-service': ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service'],
      });
      assert.equal(parentOf(one(resources, 'pulumi-nodejs:dynamic:Resource', 'data-service')), 'koa-mongodb:image:ServiceImage::data-service');
      assert.equal(parentOf(one(resources, 'pulumi-nodejs:dynamic:Resource', 'data-admin')), 'koa-mongodb:image:ServiceImage::data-admin');
    });

    it('sends every Kubernetes object through one explicit provider bound to the minikube context', () => {
      const providers = resources.filter((r) => r.type === 'pulumi:providers:kubernetes' && r.name === 'kubernetes');
      assert.equal(providers.length, 1);
      assert.equal(providers[0].inputs.context, 'minikube');
      // A changed Secret is updated in place (a replacement would delete the Deployment and StatefulSet with it).
      assert.equal(String(providers[0].inputs.enableSecretMutable), 'true');
      for (const resource of k8sResources(resources)) {
        assert.match(resource.provider ?? '', /pulumi:providers:kubernetes::kubernetes::/, `${resource.type} ${resource.name} uses the explicit provider`);
      }
    });

    it('knows the cluster by its identity: a new cluster (minikube delete + start) replaces the provider', () => {
      // The uid of kube-system, read through a provider of its own, is the provider's clusterIdentifier.
      assert.deepEqual(reads.map((r) => `${r.type} ${r.id}`), ['kubernetes:core/v1:Namespace kube-system']);
      assert.match(reads[0].provider ?? '', /pulumi:providers:kubernetes::cluster-identity::/);
      const reader = one(resources, 'pulumi:providers:kubernetes', 'cluster-identity');
      assert.equal(reader.inputs.context, 'minikube');
      const provider = one(resources, 'pulumi:providers:kubernetes', 'kubernetes');
      assert.match(provider.inputs.clusterIdentifier, /^[0-9a-f]{32}$/);
      // The image takes nothing from the cluster (a new cluster's node lacks it, and the diff asks the
      // node), so its build does not wait for the providers.
      for (const name of ['data-service', 'data-admin']) assert.equal(plain(one(resources, 'pulumi-nodejs:dynamic:Resource', name).inputs).clusterId, undefined);
    });

    it('keeps adopting retained objects when the provider is bumped (upsertExistingObjects from 4.29)', () => {
      // A tripwire: from pulumi-kubernetes 4.29 on, creating an object that exists fails unless the provider
      // says upsertExistingObjects, and retainOnDelete's namespace and claim are adopted by exactly that.
      const { version } = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', '@pulumi', 'kubernetes', 'package.json'), 'utf8')) as { version: string };
      const [major, minor] = version.split('.').map(Number);
      const provider = one(resources, 'pulumi:providers:kubernetes', 'kubernetes');
      if (major > 4 || (major === 4 && minor >= 29)) assert.equal(provider.inputs.upsertExistingObjects, true, `@pulumi/kubernetes ${version}`);
      else assert.equal(version, '4.25.0', 'the pinned provider, which adopts existing objects by itself');
    });

    it('deletes a named object before creating its replacement (a create first would clash, or be deleted by name)', () => {
      for (const resource of k8sResources(resources)) {
        assert.equal((optionsOf(resource) as { deleteBeforeReplace?: boolean }).deleteBeforeReplace, true, `${resource.type} ${resource.name}`);
      }
    });

    it('puts everything in the configured namespace, with the recommended labels', () => {
      for (const manifest of manifests(resources)) {
        const labels = manifest.metadata.labels ?? {};
        assert.equal(labels['app.kubernetes.io/part-of'], 'koa-mongodb', `${manifest.kind} part-of`);
        assert.equal(labels['app.kubernetes.io/managed-by'], 'pulumi', `${manifest.kind} managed-by`);
        if (manifest.kind === 'Namespace') {
          assert.equal(manifest.metadata.name, 'koa-mongodb');
          continue;
        }
        assert.equal(manifest.metadata.namespace, 'koa-mongodb', `${manifest.kind} ${manifest.metadata.name}`);
        for (const key of ['name', 'instance', 'component']) {
          assert.ok(labels[`app.kubernetes.io/${key}`], `${manifest.kind} ${manifest.metadata.name} has app.kubernetes.io/${key}`);
        }
      }
    });
  });

  describe('image', () => {
    it('builds service/ inside the Minikube node (any runtime), without pushing, tagged by content', () => {
      const image = plain(one(resources, 'pulumi-nodejs:dynamic:Resource', 'data-service').inputs);
      const tag = contextHash(path.join(ROOT, 'service'));
      assert.equal(image.imageName, `data-service:${tag}`);
      assert.equal(image.profile, 'minikube');
      assert.equal(image.contextDir, path.join(ROOT, 'service'));
      // The provider's code travels serialized to the dynamic provider's process: it must serialize,
      // and it builds with the minikube CLI, never through a Docker endpoint recorded in the state.
      assert.match(image.__provider, /["']image["'], ?["']build["']/);
      assert.equal(resources.filter((r) => r.type.startsWith('docker:') || r.type === 'pulumi:providers:docker').length, 0);
      assert.equal(outputs.image, `data-service:${tag}`);
      assert.doesNotMatch(outputs.image, /:latest$/);
    });

    it('the Deployment runs that exact reference with IfNotPresent (never pulled from a registry)', () => {
      const container = find('kubernetes:apps/v1:Deployment').spec.template.spec.containers[0];
      assert.equal(container.image, outputs.image);
      assert.equal(container.imagePullPolicy, 'IfNotPresent');
    });
  });

  describe('MongoDB', () => {
    it('keeps credentials in a Secret built from config, root and app user separate', () => {
      const secret = find('kubernetes:core/v1:Secret', 'mongodb-credentials');
      assert.deepEqual(secret.stringData, {
        'root-username': 'root',
        'root-password': DEV_SECRETS.mongoRootPassword,
        'app-username': appUserName('app', 'flask_db', DEV_SECRETS.mongoAppPassword),
        'app-password': DEV_SECRETS.mongoAppPassword,
        // The backup CronJob's own user (read only), derived from the application password.
        'backup-username': appUserName('backup', 'flask_db', backupPassword(DEV_SECRETS.mongoAppPassword)),
        'backup-password': backupPassword(DEV_SECRETS.mongoAppPassword),
      });
    });

    it('brings the app user in line with the Secret in a Job, as root, on every change of credentials or claim', () => {
      const job = find('kubernetes:batch/v1:Job', 'mongodb-users');
      const pod = job.spec.template.spec;
      const container = pod.containers[0];
      // The admin image runs the reconcile program (admin/src/users/ensure-user-main.ts), not the service's.
      assert.equal(container.image, `data-admin:${contextHash(path.join(ROOT, 'admin'))}`);
      assert.deepEqual(container.command, ['node', 'dist/users/ensure-user-main.js']);
      const env = Object.fromEntries(container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
      assert.equal(env.MONGODB_URI, 'mongodb://mongodb.koa-mongodb.svc.cluster.local:27017/');
      assert.equal(env.MONGODB_DB, 'flask_db');
      assert.deepEqual(env.MONGODB_ADMIN_PASSWORD, { secretKeyRef: { name: 'mongodb-credentials', key: 'root-password' } });
      assert.deepEqual(env.MONGODB_PASSWORD, { secretKeyRef: { name: 'mongodb-credentials', key: 'app-password' } });
      assert.ok(!JSON.stringify(job).includes('Pa55'), 'no password in the Job');
      // A changed password changes the pod template (a digest, not the password), which replaces the Job.
      assert.match(job.spec.template.metadata.annotations['koa-mongodb/credentials-digest'], /^[0-9a-f]{32}$/);
      assert.equal(job.metadata.annotations['pulumi.com/replaceUnready'], 'true', 'a failed run is retried by the next up');
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.deepEqual(container.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      // No init script any more: it would only run on an empty data directory.
      assert.equal(resources.filter((r) => r.type === 'kubernetes:core/v1:ConfigMap').length, 0);
    });

    it('a change to the service\'s code changes no Job: two programs differing only in the service image give identical Jobs', async () => {
      const jobsOf = async (serviceImage: string) => {
        const run = await runStack({ imageMode: 'prebuilt', image: serviceImage, adminImage: 'ghcr.io/me/data-admin:1.0.0' });
        const deployment = plain(one(run.resources, 'kubernetes:apps/v1:Deployment').inputs).spec.template.spec.containers[0].image;
        const jobs = run.resources.filter((r) => r.type === 'kubernetes:batch/v1:Job' || r.type === 'kubernetes:batch/v1:CronJob');
        return { deployment, jobs: JSON.stringify(jobs.map((job) => [job.name, plain(job.inputs)])), count: jobs.length };
      };
      const before = await jobsOf('ghcr.io/me/data-service:1.0.0');
      const after = await jobsOf('ghcr.io/me/data-service:1.0.1');
      assert.notEqual(after.deployment, before.deployment, 'the service rolls');
      assert.equal(before.count, 3, 'the users Job, the retire Job, the backup CronJob');
      assert.equal(after.jobs, before.jobs, 'no Job is replaced (none runs again)');
      assert.ok(!before.jobs.includes('data-service:'), 'no Job names the service\'s image');
    });

    it('the digest follows the credentials', async () => {
      const digestOf = async (appPassword: string) => {
        const run = await runStack({}, { ...DEV_SECRETS, mongoAppPassword: appPassword });
        return plain(one(run.resources, 'kubernetes:batch/v1:Job', 'mongodb-users').inputs).spec.template.metadata.annotations['koa-mongodb/credentials-digest'];
      };
      const first = await digestOf('first-Pa55');
      assert.equal(await digestOf('first-Pa55'), first);
      assert.notEqual(await digestOf('rotated-Pa55'), first);
      resources = (await runStack()).resources; // the rest of this suite reads the dev stack
    });

    it('each password has its own application user, so the old pods keep theirs through a rotation', async () => {
      const userOf = async (appPassword: string) => {
        const run = await runStack({}, { ...DEV_SECRETS, mongoAppPassword: appPassword });
        return plain(one(run.resources, 'kubernetes:core/v1:Secret', 'mongodb-credentials').inputs).stringData['app-username'];
      };
      const first = await userOf('first-Pa55');
      assert.match(first, /^app-[0-9a-f]{10}$/);
      assert.equal(await userOf('first-Pa55'), first, 'the same password, the same user');
      const rotated = await userOf('rotated-Pa55');
      assert.match(rotated, /^app-[0-9a-f]{10}$/);
      assert.notEqual(rotated, first);
      resources = (await runStack()).resources; // the rest of this suite reads the dev stack
    });

    it('retires the earlier users in a Job after the rollout, once the old pods\' grace period has passed', () => {
      const job = find('kubernetes:batch/v1:Job', 'mongodb-retire-users');
      const container = job.spec.template.spec.containers[0];
      assert.equal(container.image, `data-admin:${contextHash(path.join(ROOT, 'admin'))}`);
      assert.deepEqual(container.command, ['node', 'dist/users/retire-users-main.js']);
      const env = Object.fromEntries(container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
      assert.equal(env.MONGODB_USER_PREFIX, 'app');
      assert.equal(env.DRAIN_SECONDS, String(find('kubernetes:apps/v1:Deployment').spec.template.spec.terminationGracePeriodSeconds));
      assert.deepEqual(env.MONGODB_USER, { secretKeyRef: { name: 'mongodb-credentials', key: 'app-username' } });
      assert.deepEqual(env.MONGODB_ADMIN_PASSWORD, { secretKeyRef: { name: 'mongodb-credentials', key: 'root-password' } });
      // Replaced (run again) when the credentials change, like the users Job.
      assert.equal(job.spec.template.metadata.annotations['koa-mongodb/credentials-digest'], find('kubernetes:batch/v1:Job', 'mongodb-users').spec.template.metadata.annotations['koa-mongodb/credentials-digest']);
      assert.equal(job.metadata.annotations['pulumi.com/replaceUnready'], 'true');
      assert.deepEqual(job.spec.template.metadata.labels, find('kubernetes:batch/v1:Job', 'mongodb-users').spec.template.metadata.labels, 'admitted by the NetworkPolicy like the users Job');
    });

    it('a rotated app password changes the service\'s pod template, so its pods roll and read the new one', async () => {
      const templateOf = async (appPassword: string) => {
        const run = await runStack({}, { ...DEV_SECRETS, mongoAppPassword: appPassword });
        return JSON.stringify(plain(one(run.resources, 'kubernetes:apps/v1:Deployment').inputs).spec.template);
      };
      const first = await templateOf('first-Pa55');
      assert.equal(await templateOf('first-Pa55'), first, 'nothing rolls while the credentials stay');
      const rotated = await templateOf('rotated-Pa55');
      assert.notEqual(rotated, first, 'a rotation rolls the pods (they read MONGODB_PASSWORD only at start)');
      assert.ok(!rotated.includes('rotated-Pa55'), 'the template names the Secret\'s revision, never the password');
      resources = (await runStack()).resources; // the rest of this suite reads the dev stack
    });

    it('runs a pinned mongo image as uid 999 with its data on the claim and the guide\'s resources', () => {
      const sts = find('kubernetes:apps/v1:StatefulSet');
      const pod = sts.spec.template.spec;
      const container = pod.containers[0];
      assert.equal(container.image, 'mongo:8.0.12');
      assert.equal(sts.spec.replicas, 1);
      assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, seccompProfile: { type: 'RuntimeDefault' } });
      assert.equal(container.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(container.resources, { requests: { cpu: '200m', memory: '250Mi' }, limits: { cpu: '500m', memory: '500Mi' } });
      assert.deepEqual(container.args, ['--wiredTigerCacheSizeGB', '0.25'], 'cache sized for the 500Mi limit');
      const dataMount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/data/db');
      const dataVolume = pod.volumes.find((v: { name: string }) => v.name === dataMount.name);
      const claim = find('kubernetes:core/v1:PersistentVolumeClaim', 'mongodb-data');
      assert.equal(dataVolume.persistentVolumeClaim.claimName, claim.metadata.name);
      assert.equal(claim.spec.storageClassName, 'standard');
      assert.equal(claim.spec.resources.requests.storage, '1Gi');
      assert.equal(pod.initContainers, undefined, 'no root init container with dynamic volumes');
    });

    it('probes cheaply over TCP, with five minutes to start, and keeps dotfiles out of the data volume', () => {
      const container = find('kubernetes:apps/v1:StatefulSet').spec.template.spec.containers[0];
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        assert.deepEqual(container[probe].tcpSocket, { port: 'mongodb' }, probe);
        assert.equal(container[probe].exec, undefined, `${probe} forks nothing inside the container`);
      }
      assert.ok(container.startupProbe.failureThreshold * container.startupProbe.periodSeconds >= 300, 'five minutes to start');
      assert.deepEqual(container.env.find((e: { name: string }) => e.name === 'HOME'), { name: 'HOME', value: '/tmp' });
    });

    it('is reached through a headless Service that is the StatefulSet\'s serviceName', () => {
      const service = find('kubernetes:core/v1:Service', 'mongodb');
      assert.equal(service.spec.clusterIP, 'None');
      assert.equal(find('kubernetes:apps/v1:StatefulSet').spec.serviceName, service.metadata.name);
      assert.equal(outputs.mongoHost, 'mongodb.koa-mongodb.svc.cluster.local');
    });

    it('admits only the data service\'s pods, the users Jobs\' and the backup CronJob\'s on 27017 (NetworkPolicy)', () => {
      const policy = find('kubernetes:networking.k8s.io/v1:NetworkPolicy');
      const mongoPods = find('kubernetes:apps/v1:StatefulSet').spec.template.metadata.labels;
      const servicePods = find('kubernetes:apps/v1:Deployment').spec.template.metadata.labels;
      assert.ok(matches(policy.spec.podSelector.matchLabels, mongoPods));
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      assert.equal(policy.spec.ingress.length, 1);
      assert.ok(matches(policy.spec.ingress[0].from[0].podSelector.matchLabels, servicePods));
      assert.ok(!matches(policy.spec.ingress[0].from[0].podSelector.matchLabels, mongoPods));
      // …and the users Job's pods, which nothing else matches.
      const jobPods = find('kubernetes:batch/v1:Job', 'mongodb-users').spec.template.metadata.labels;
      assert.equal(policy.spec.ingress[0].from.length, 3);
      assert.ok(matches(policy.spec.ingress[0].from[1].podSelector.matchLabels, jobPods));
      assert.ok(!matches(policy.spec.ingress[0].from[1].podSelector.matchLabels, servicePods));
      // …and the pods wearing the label MongoDb hands its other clients: the backup CronJob's, and no one else's.
      const backupPods = find('kubernetes:batch/v1:CronJob', 'mongodb-backups').spec.jobTemplate.spec.template.metadata.labels;
      const third = policy.spec.ingress[0].from[2].podSelector.matchLabels;
      assert.deepEqual(third, { 'koa-mongodb/mongodb-client': 'mongodb' });
      assert.ok(matches(third, backupPods));
      for (const other of [servicePods, jobPods, mongoPods]) assert.ok(!matches(third, other));
      assert.deepEqual(policy.spec.ingress[0].ports, [{ protocol: 'TCP', port: 27017 }]);
    });

    it('by default lets destroy remove the claim (retainOnDelete off)', () => {
      for (const claim of ['mongodb-data', 'mongodb-backups']) assert.notEqual(optionsOf(one(resources, 'kubernetes:core/v1:PersistentVolumeClaim', claim)).retainOnDelete, true, claim);
      assert.notEqual(optionsOf(one(resources, 'kubernetes:core/v1:Namespace')).retainOnDelete, true);
    });
  });

  describe('data service', () => {
    const deployment = () => find('kubernetes:apps/v1:Deployment');
    const container = () => deployment().spec.template.spec.containers[0];
    const envOf = (name: string) => container().env.find((e: { name: string }) => e.name === name);

    it('runs 2 replicas with the guide\'s requests and limits', () => {
      assert.equal(deployment().spec.replicas, 2);
      assert.deepEqual(container().resources, { requests: { cpu: '200m', memory: '250Mi' }, limits: { cpu: '500m', memory: '500Mi' } });
    });

    it('dials MongoDB by its Service DNS name, with the password only through a secretKeyRef', () => {
      assert.equal(envOf('MONGODB_URI').value, 'mongodb://mongodb.koa-mongodb.svc.cluster.local:27017/');
      assert.equal(envOf('MONGODB_DB').value, 'flask_db');
      assert.equal(envOf('MONGODB_AUTH_SOURCE').value, 'flask_db');
      assert.deepEqual(envOf('MONGODB_PASSWORD'), { name: 'MONGODB_PASSWORD', valueFrom: { secretKeyRef: { name: 'mongodb-credentials', key: 'app-password' } } });
      assert.deepEqual(envOf('MONGODB_USER').valueFrom.secretKeyRef, { name: 'mongodb-credentials', key: 'app-username' });
      assert.ok(!container().env.some((e: { value?: string }) => /Pa55/.test(e.value ?? '')), 'no password in plain env');
    });

    it('serves /metrics on a port of its own that the public Service does not expose', () => {
      assert.equal(envOf('METRICS_PORT').value, '9464');
      assert.deepEqual(container().ports.find((p: { name: string }) => p.name === 'metrics'), { name: 'metrics', containerPort: 9464, protocol: 'TCP' });
      const service = find('kubernetes:core/v1:Service', 'data-service');
      assert.deepEqual(service.spec.ports.map((p: { targetPort: string }) => p.targetPort), ['http']);
      assert.equal(deployment().spec.template.metadata.annotations['prometheus.io/port'], '9464');
    });

    it('probes /healthz for liveness and /readyz for readiness, each waiting longer than the service\'s own deadline', () => {
      assert.ok(container().readinessProbe.timeoutSeconds * 1000 > 1000, 'READY_TIMEOUT_MS (1000) fits in the probe');
      assert.deepEqual(container().livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
      assert.deepEqual(container().readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
      // A new pod takes traffic within a second of being ready. Out after some seconds of misses, and at
      // most 10 s even when every probe times out (the kubelet runs one probe at a time).
      const readiness = container().readinessProbe;
      assert.equal(readiness.periodSeconds, 1);
      assert.ok(readiness.periodSeconds * readiness.failureThreshold >= 5, 'a slow second of the database does not take it out');
      assert.ok(Math.max(readiness.periodSeconds, readiness.timeoutSeconds) * readiness.failureThreshold <= 10, 'a hung pod is out within 10 s');
    });

    it('is locked down: non-root, no privilege escalation, read-only root, no API token', () => {
      const pod = deployment().spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(pod.securityContext.runAsUser, 1000);
      assert.equal(pod.automountServiceAccountToken, false);
      assert.deepEqual(container().securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    });

    it('drains on the way out: preStop pause, then SIGTERM with time to finish inside the grace period', () => {
      const pod = deployment().spec.template.spec;
      const pause = Number(container().lifecycle.preStop.exec.command[1]);
      const drainMs = Number(envOf('SHUTDOWN_TIMEOUT_MS').value);
      assert.ok(pause >= 3, 'endpoints get time to go');
      assert.ok(pause + drainMs / 1000 < pod.terminationGracePeriodSeconds, 'all of it fits in the grace period');
      assert.deepEqual(deployment().spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    });

    it('leaves spec.replicas to the HPA after the first rollout', () => {
      assert.deepEqual(optionsOf(one(resources, 'kubernetes:apps/v1:Deployment')).ignoreChanges, ['spec.replicas']);
    });

    it('is exposed by a NodePort Service on 5000 → the container\'s http port', () => {
      const service = find('kubernetes:core/v1:Service', 'data-service');
      assert.equal(service.spec.type, 'NodePort');
      assert.equal(service.spec.ports[0].port, 5000);
      assert.equal(service.spec.ports[0].targetPort, 'http');
      assert.equal(container().ports[0].containerPort, 5000);
    });

    it('autoscales 2→5 at 70 % CPU (autoscaling/v2) with a calm scale-down', () => {
      const hpa = find('kubernetes:autoscaling/v2:HorizontalPodAutoscaler');
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment().metadata.name });
      assert.equal(hpa.spec.minReplicas, 2);
      assert.equal(hpa.spec.maxReplicas, 5);
      assert.deepEqual(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }]);
      assert.ok(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds >= 60);
    });

    it('keeps one pod through voluntary disruptions (PDB)', () => {
      const pdb = find('kubernetes:policy/v1:PodDisruptionBudget');
      assert.equal(pdb.spec.minAvailable, 1);
      assert.ok(matches(pdb.spec.selector.matchLabels, deployment().spec.template.metadata.labels));
    });

    it('the users Jobs moved out of MongoDb keep it as an alias: an existing stack replaces them in place, not beside (fixed names)', () => {
      for (const name of ['mongodb-users', 'mongodb-retire-users']) {
        const aliases = (optionsOf(one(resources, 'kubernetes:batch/v1:Job', name)).aliases ?? []) as { parent?: { __pulumiType: string; __name: string } }[];
        assert.deepEqual(aliases.map((alias) => `${alias.parent?.__pulumiType}::${alias.parent?.__name}`), ['koa-mongodb:database:MongoDb::mongodb'], name);
      }
    });

    it('waits for MongoDB (not the users Job: the pods start beside it) before rolling out; the retire Job waits for both', () => {
      const names = (type: string, name: string) => ((optionsOf(one(resources, type, name)).dependsOn ?? []) as unknown as { __pulumiType: string; __name: string }[]).map((r) => `${r.__pulumiType}::${r.__name}`).sort();
      assert.deepEqual(names('koa-mongodb:service:DataService', 'data-service'), ['kubernetes:apps/v1:StatefulSet::mongodb']);
      assert.deepEqual(names('kubernetes:batch/v1:Job', 'mongodb-retire-users'), ['koa-mongodb:service:DataService::data-service', 'kubernetes:batch/v1:Job::mongodb-users']);
      assert.deepEqual(names('kubernetes:batch/v1:Job', 'mongodb-users'), ['kubernetes:apps/v1:StatefulSet::mongodb']);
    });
  });

  describe('outputs', () => {
    it('url is the Minikube node IP and the assigned node port', () => {
      assert.equal(outputs.url, 'http://192.168.49.2:31234');
    });
    it('namespace, image, mongo host, context and a port-forward command', () => {
      assert.equal(outputs.namespace, 'koa-mongodb');
      assert.equal(outputs.kubeContext, 'minikube');
      assert.equal(outputs.portForward, 'kubectl --context minikube -n koa-mongodb port-forward svc/data-service 5000:5000');
    });
  });
});
