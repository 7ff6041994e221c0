import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DEFAULTS, REQUIRED_SECRET_KEYS, SECRET_KEYS, StackConfigError, loadConfig } from '../../components/config';
import { minikubeDockerEndpoint } from '../../components/minikube';
import { setConfig } from './harness';
import { MACHINE, ROOT, committedFile, devStackConfig } from './fixtures';

interface ConfigDeclaration {
  type: string;
  description?: string;
  default?: unknown;
  secret?: boolean;
}
const project = parse(readFileSync(path.join(ROOT, 'Pulumi.yaml'), 'utf8')) as { name: string; runtime: { name: string }; main: string; config: Record<string, ConfigDeclaration> };
const stackFile = committedFile('Pulumi.dev.yaml');

const expectProblems = (values: Record<string, string>, secrets: string[], patterns: RegExp[]) => {
  setConfig(values, secrets);
  assert.throws(loadConfig, (error: unknown) => {
    assert.ok(error instanceof StackConfigError, String(error));
    assert.equal(error.problems.length, patterns.length, error.message);
    patterns.forEach((pattern) => assert.match(error.message, pattern));
    return true;
  });
};

describe('stack configuration', () => {
  describe('Pulumi.yaml schema', () => {
    it('is a TypeScript nodejs project whose name is the type tokens\' prefix', () => {
      assert.equal(project.name, 'koa-mongodb');
      assert.equal(project.runtime.name, 'nodejs');
      assert.equal(project.main, 'index.ts');
    });

    it('declares every key with a valid type and a description; secrets marked secret, without defaults', () => {
      for (const [key, declaration] of Object.entries(project.config)) {
        assert.ok(['string', 'integer', 'boolean', 'array'].includes(declaration.type), `${key}: type ${declaration.type}`);
        assert.ok(declaration.description && declaration.description.length > 10, `${key} has a description`);
        if (declaration.default !== undefined) {
          const expected = { string: 'string', integer: 'number', boolean: 'boolean', array: 'object' }[declaration.type];
          assert.equal(typeof declaration.default, expected, `${key} default matches its type`);
        }
      }
      for (const key of REQUIRED_SECRET_KEYS) assert.equal(project.config[key]?.secret, true, `${key} is secret`);
      // An optional secret cannot be declared (the CLI demands an encrypted value for a declared secret).
      assert.equal(project.config.registryPassword, undefined);
    });

    it('requires only the MongoDB passwords: the CLI treats a declared key without a default as required', () => {
      const required = Object.entries(project.config).filter(([, d]) => d.default === undefined).map(([key]) => key);
      assert.deepEqual(required.sort(), [...REQUIRED_SECRET_KEYS].sort());
    });

    it('its defaults are the config module\'s defaults, key for key', () => {
      for (const [key, value] of Object.entries(DEFAULTS)) {
        assert.ok(project.config[key], `${key} is declared in Pulumi.yaml`);
        assert.equal(String(project.config[key].default), String(value), `${key} default`);
      }
      const withDefaults = Object.entries(project.config).filter(([, d]) => d.default !== undefined).map(([key]) => key);
      assert.deepEqual(withDefaults.sort(), Object.keys(DEFAULTS).sort());
    });

    it('every key the program reads is declared (and nothing else is), but the optional registryPassword', () => {
      const source = readFileSync(path.join(ROOT, 'components', 'config.ts'), 'utf8');
      const read = new Set([...source.matchAll(/(?:config\.get(?:Secret)?|optional)\('(\w+)'\)/g)].map((m) => m[1]));
      for (const key of [...Object.keys(DEFAULTS), ...SECRET_KEYS]) read.add(key);
      read.delete('registryPassword');
      assert.deepEqual([...read].sort(), Object.keys(project.config).sort());
    });
  });

  describe('Pulumi.dev.yaml', () => {
    it('holds no secret, encrypted or not', () => {
      for (const key of SECRET_KEYS) assert.doesNotMatch(stackFile, new RegExp(`${key}\\s*:`), `${key} must not be in git`);
      assert.doesNotMatch(stackFile, /secure:|encryptionsalt/);
    });
    it('sets only declared keys, with values of their declared types', () => {
      const config = devStackConfig();
      for (const [key, value] of Object.entries(config)) {
        const declaration = project.config[key];
        assert.ok(declaration, `${key} is declared`);
        if (declaration.type === 'integer') assert.match(value, /^\d+$/, key);
        if (declaration.type === 'boolean') assert.match(value, /^(true|false)$/, key);
      }
    });
  });

  describe('loadConfig', () => {
    it('a missing secret fails with the command that fixes it', () => {
      expectProblems({ ...devStackConfig(), ...MACHINE }, [], [
        /mongoRootPassword is not set: run `pulumi config set --secret mongoRootPassword <value>`/,
        /mongoAppPassword is not set: run `pulumi config set --secret mongoAppPassword <value>`/,
      ]);
    });

    it('registry mode needs its server, user and secret password', () => {
      expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', imageMode: 'registry' }, ['mongoRootPassword', 'mongoAppPassword'], [
        /registryServer/,
        /registryUsername/,
        /registryPassword is not set/,
      ]);
    });

    it('reports every bad value at once', () => {
      expectProblems(
        {
          mongoRootPassword: 'a',
          mongoAppPassword: 'b',
          imageMode: 'ftp',
          namespace: 'Bad_Name',
          cpuLimit: 'lots',
          memoryRequest: '250 MB',
          minReplicas: '6',
          maxReplicas: '5',
          serviceType: 'Ingress',
          nodePort: '80',
          mongoImage: 'mongo:latest',
          retainOnDelete: 'yes',
          logLevel: 'loud',
        },
        ['mongoRootPassword', 'mongoAppPassword'],
        [
          /imageMode must be one of minikube, registry, prebuilt; got "ftp"/,
          /namespace "Bad_Name" is not a valid Kubernetes name/,
          /cpuLimit "lots" is not a Kubernetes CPU quantity/,
          /memoryRequest "250 MB" is not a Kubernetes memory quantity/,
          /minReplicas \(6\) must not exceed maxReplicas \(5\)/,
          /serviceType must be one of NodePort, LoadBalancer, ClusterIP/,
          /nodePort must be a whole number from 30000 to 32767/,
          /mongoImage "mongo:latest" must be pinned/,
          /retainOnDelete must be true or false/,
          /logLevel must be one of/,
        ],
      );
    });

    it('prebuilt mode refuses :latest and untagged references', () => {
      for (const image of ['me/app:latest', 'me/app']) {
        expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', imageMode: 'prebuilt', image }, ['mongoRootPassword', 'mongoAppPassword'], [/exact tag or digest/]);
      }
    });
  });

  describe('finding Minikube\'s Docker daemon', () => {
    const fail = () => {
      throw new Error('minikube: command not found');
    };
    it('prefers stack config', () => {
      assert.deepEqual(minikubeDockerEndpoint({ host: 'tcp://1.2.3.4:2376', certPath: '/c' }, 'minikube', {}, fail), { host: 'tcp://1.2.3.4:2376', certPath: '/c' });
    });
    it('takes the environment only when `minikube docker-env` set it', () => {
      const env = { DOCKER_HOST: 'tcp://192.168.49.2:2376', DOCKER_CERT_PATH: '/m/certs', MINIKUBE_ACTIVE_DOCKERD: 'minikube' };
      assert.deepEqual(minikubeDockerEndpoint({}, 'minikube', env, fail), { host: 'tcp://192.168.49.2:2376', certPath: '/m/certs' });
      const desktop = { DOCKER_HOST: 'unix:///var/run/docker.sock' };
      assert.throws(() => minikubeDockerEndpoint({}, 'minikube', desktop, fail), /cannot find Minikube's Docker daemon.*eval \$\(minikube docker-env\)/);
    });
    it('otherwise asks `minikube docker-env` for the profile', () => {
      let asked: string[] = [];
      const endpoint = minikubeDockerEndpoint({}, 'dev', {}, (args) => {
        asked = args;
        return 'DOCKER_TLS_VERIFY="1"\nDOCKER_HOST="tcp://192.168.58.2:2376"\nDOCKER_CERT_PATH="/home/u/.minikube/certs"\nMINIKUBE_ACTIVE_DOCKERD="dev"\n';
      });
      assert.deepEqual(asked, ['-p', 'dev', 'docker-env', '--shell', 'none']);
      assert.deepEqual(endpoint, { host: 'tcp://192.168.58.2:2376', certPath: '/home/u/.minikube/certs' });
    });
  });
});
