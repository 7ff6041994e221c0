import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import path from 'node:path';
import { STACK_SET_SERVICE_ENV } from '../../components/config';
import { DatabaseUsers } from '../../components/databaseUsers';
import { DataService } from '../../components/dataService';
import { appLabels } from '../../components/labels';
import { MongoDb, type MongoDbArgs } from '../../components/mongodb';
import { ServiceImage } from '../../components/serviceImage';
import { ofType, one, optionsOf, parentOf, plain, run, valueOf } from './harness';
import { ROOT } from './fixtures';

const resources = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } };

/** A MongoDb as a shop's program would declare it, shared by the tests of MongoDb and of what uses it. */
const shopMongo = (): MongoDbArgs => ({
  namespace: 'shop',
  labels: appLabels('mongodb', 'database', 'shop', 'prod'),
  image: 'mongo:7.0.14',
  database: 'orders',
  rootUsername: 'admin',
  rootPassword: 'r',
  appUserPrefix: 'orders-app',
  appPassword: 'a',
  storageSize: '20Gi',
  storageClass: 'fast',
  wiredTigerCacheGb: 1,
  resources,
  retainOnDelete: true,
  clientSelector: { app: 'orders' },
  userSyncLabels: appLabels('db-users', 'database-admin', 'shop', 'prod'),
});

/** Each component on its own, as a user would reuse it in another program. */
describe('components on their own', () => {
  it('MongoDb: its children, and the outputs a client needs', async () => {
    let mongo!: MongoDb;
    const { resources: declared } = await run(() => {
      mongo = new MongoDb('db', shopMongo());
      return mongo;
    });
    assert.deepEqual(
      declared.filter((r) => r.custom).map((r) => r.type.split(':')[2]).sort(),
      ['NetworkPolicy', 'PersistentVolumeClaim', 'Secret', 'Service', 'StatefulSet'],
    );
    for (const child of declared.filter((r) => r.custom)) assert.equal(parentOf(child), 'koa-mongodb:database:MongoDb::db');
    // One connection value, handed over whole: where, which database, and env sources for the app user.
    const connection = mongo.connection;
    assert.equal(await valueOf(connection.host), 'db.shop.svc.cluster.local');
    assert.equal(connection.port, 27017);
    assert.equal(connection.database, 'orders');
    assert.equal(await valueOf(connection.uri), 'mongodb://db.shop.svc.cluster.local:27017/');
    assert.deepEqual(plain(await valueOf(connection.username as never)), { secretKeyRef: { name: 'db-credentials', key: 'app-username' } });
    assert.deepEqual(plain(await valueOf(connection.password as never)), { secretKeyRef: { name: 'db-credentials', key: 'app-password' } });
    assert.equal(plain(one(declared, 'kubernetes:core/v1:PersistentVolumeClaim').inputs).spec.storageClassName, 'fast');
    const policy = plain(one(declared, 'kubernetes:networking.k8s.io/v1:NetworkPolicy').inputs);
    assert.deepEqual(policy.spec.ingress[0].from[0].podSelector.matchLabels, { app: 'orders' });
    assert.deepEqual(policy.spec.ingress[0].from[1].podSelector.matchLabels, appLabels('db-users', 'database-admin', 'shop', 'prod').selector);
    // What the users Jobs take from it: root's login as env sources, and the digest of the credentials.
    assert.deepEqual(plain(await valueOf(mongo.admin.password as never)), { secretKeyRef: { name: 'db-credentials', key: 'root-password' } });
    assert.match(await valueOf(mongo.admin.digest), /^[0-9a-f]{32}$/);
    // The user is the prefix and a tag of the password.
    assert.match(plain(one(declared, 'kubernetes:core/v1:Secret').inputs).stringData['app-username'], /^orders-app-[0-9a-f]{10}$/);
  });

  it('DatabaseUsers: the users and retire Jobs, from what MongoDb hands out, after MongoDB and after the clients\' rollout', async () => {
    const { resources: declared } = await run(() => {
      const mongo = new MongoDb('db', shopMongo());
      const client = new pulumi.ComponentResource('test:index:Client', 'orders-api');
      return new DatabaseUsers('db', {
        namespace: 'shop',
        labels: appLabels('db-users', 'database-admin', 'shop', 'prod'),
        image: { ref: 'registry.example/orders-admin:1.0.0' },
        mongo: mongo.connection,
        admin: mongo.admin,
        appUserPrefix: 'orders-app',
        backup: { username: mongo.backupConnection.username, password: mongo.backupConnection.password, prefix: 'backup' },
        after: mongo.ready,
        clients: { rollout: [client], drainSeconds: 45 },
      });
    });
    const jobs = declared.filter((r) => r.type === 'kubernetes:batch/v1:Job');
    assert.deepEqual(jobs.map((job) => job.name).sort(), ['db-retire-users', 'db-users']);
    for (const job of jobs) assert.equal(parentOf(job), 'koa-mongodb:database:DatabaseUsers::db');
    const users = plain(one(declared, 'kubernetes:batch/v1:Job', 'db-users').inputs);
    const container = users.spec.template.spec.containers[0];
    assert.equal(container.image, 'registry.example/orders-admin:1.0.0');
    assert.deepEqual(container.command, ['node', 'dist/users/ensure-user-main.js']);
    const env = Object.fromEntries(container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(env.MONGODB_ADMIN_USER, { secretKeyRef: { name: 'db-credentials', key: 'root-username' } });
    assert.deepEqual(env.MONGODB_USER, { secretKeyRef: { name: 'db-credentials', key: 'app-username' } });
    assert.equal(env.MONGODB_DB, 'orders');
    assert.deepEqual(users.spec.template.metadata.labels, appLabels('db-users', 'database-admin', 'shop', 'prod').all);
    const retire = plain(one(declared, 'kubernetes:batch/v1:Job', 'db-retire-users').inputs).spec.template.spec.containers[0];
    assert.deepEqual(retire.command, ['node', 'dist/users/retire-users-main.js']);
    assert.deepEqual(env.MONGODB_BACKUP_USER, { secretKeyRef: { name: 'db-credentials', key: 'backup-username' } });
    assert.deepEqual(env.MONGODB_BACKUP_PASSWORD, { secretKeyRef: { name: 'db-credentials', key: 'backup-password' } });
    assert.deepEqual(retire.env.slice(-3), [
      { name: 'MONGODB_USER_PREFIX', value: 'orders-app' },
      { name: 'MONGODB_BACKUP_USER_PREFIX', value: 'backup' },
      { name: 'DRAIN_SECONDS', value: '45' },
    ]);
    const after = (name: string) => ((optionsOf(one(declared, 'kubernetes:batch/v1:Job', name)).dependsOn ?? []) as unknown as { __name: string }[]).map((r) => r.__name).sort();
    assert.deepEqual(after('db-users'), ['db']);
    assert.deepEqual(after('db-retire-users'), ['db-users', 'orders-api']);
  });

  it('DataService: Deployment, Service, HPA and PDB from plain arguments', async () => {
    let service!: DataService;
    const { resources: declared } = await run(() => {
      service = new DataService('api', {
        namespace: 'shop',
        labels: appLabels('orders-api', 'api', 'shop', 'prod'),
        image: { ref: 'registry.example/orders:1.0.0', pullPolicy: 'IfNotPresent' },
        mongo: {
          host: pulumi.output('db.shop.svc.cluster.local'),
          port: 27017,
          database: 'orders',
          uri: pulumi.output('mongodb://db.shop.svc.cluster.local:27017/'),
          username: { secretKeyRef: { name: 'db-credentials', key: 'u' } },
          password: { secretKeyRef: { name: 'db-credentials', key: 'p' } },
          revision: pulumi.output('4711'),
          clientLabels: { 'koa-mongodb/mongodb-client': 'db' },
        },
        collection: 'items',
        awaitLoadBalancer: true,
        replicas: 3,
        minReplicas: 3,
        maxReplicas: 10,
        targetCpuPercent: 60,
        resources,
        serviceType: 'ClusterIP',
        port: 8080,
        logLevel: 'warn',
        corsOrigins: 'https://shop.example',
        tuning: { BODY_LIMIT_BYTES: '2097152', MAX_OPEN_CURSORS: '32' },
        rolloutTimeoutSeconds: 300,
      });
      return service;
    });
    assert.deepEqual(declared.filter((r) => r.custom).map((r) => r.type.split(':')[2]).sort(), ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service']);
    const deployment = plain(one(declared, 'kubernetes:apps/v1:Deployment').inputs);
    const env = Object.fromEntries(deployment.spec.template.spec.containers[0].env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(env.MONGODB_PASSWORD, { secretKeyRef: { name: 'db-credentials', key: 'p' } });
    // The service sizes its budget of request bodies from the container's own memory limit.
    assert.deepEqual(env.MEMORY_LIMIT_BYTES, { resourceFieldRef: { resource: 'limits.memory', divisor: '1' } });
    assert.equal(env.MONGODB_URI, 'mongodb://db.shop.svc.cluster.local:27017/');
    assert.equal(env.MONGODB_COLLECTION, 'items');
    assert.equal(env.CORS_ORIGINS, 'https://shop.example');
    assert.equal(env.BODY_LIMIT_BYTES, '2097152', 'the tuning (serviceEnv) reaches the container');
    assert.equal(env.MAX_OPEN_CURSORS, '32');
    // What the component sets itself is exactly what serviceEnv may not touch (config.ts's list).
    const names: string[] = deployment.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
    const own = names.filter((name) => !['BODY_LIMIT_BYTES', 'MAX_OPEN_CURSORS'].includes(name));
    assert.deepEqual(own.filter((name) => !(STACK_SET_SERVICE_ENV as readonly string[]).includes(name)), [], 'every variable the component sets is reserved from serviceEnv');
    assert.equal(new Set(names).size, names.length, 'no variable set twice');
    assert.equal(deployment.spec.template.spec.imagePullSecrets, undefined);
    assert.equal(plain(one(declared, 'kubernetes:core/v1:Service').inputs).spec.ports[0].port, 8080);
    assert.equal(await valueOf(service.serviceName), 'api');
    assert.equal(plain(one(declared, 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler').inputs).spec.maxReplicas, 10);
  });

  it('ServiceImage: prebuilt needs nothing but the reference; minikube mode builds inside the node', async () => {
    let prebuilt!: ServiceImage;
    const first = await run(() => {
      prebuilt = new ServiceImage('img', { mode: 'prebuilt', contextDir: path.join(ROOT, 'service'), repository: 'x', reference: 'x:1', namespace: 'ns', labels: {} });
      return prebuilt;
    });
    assert.equal(await valueOf(prebuilt.ref), 'x:1');
    assert.equal(first.resources.filter((r) => r.custom).length, 0);

    let local!: ServiceImage;
    const second = await run(() => {
      local = new ServiceImage('img', {
        mode: 'minikube',
        contextDir: path.join(ROOT, 'service'),
        repository: 'orders',
        minikubeProfile: 'shop',
        namespace: 'ns',
        labels: {},
      });
      return local;
    });
    assert.equal(ofType(second.resources, 'pulumi:providers:docker').length, 0, 'no Docker endpoint is recorded');
    const built = plain(one(second.resources, 'pulumi-nodejs:dynamic:Resource').inputs);
    assert.equal(built.profile, 'shop');
    assert.deepEqual(Object.keys(built).filter((key) => key !== '__provider').sort(), ['contextDir', 'imageName', 'profile'], 'nothing of the cluster: the build waits for no provider');
    assert.equal(await valueOf(local.ref), `orders:${local.contentTag}`);
    assert.equal(local.pullSecretName, undefined);
  });
});
