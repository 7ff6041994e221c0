import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import * as pulumi from '@pulumi/pulumi';
import { CONFIG_KEYS, REQUIRED_SECRET_KEYS, SECRET_KEYS, StackConfigError, loadConfig } from '../../components/config';
import { PROJECT, setConfig } from './harness';
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

    it('declares a default for every key the program reads: defaults live there only', () => {
      for (const key of CONFIG_KEYS) {
        assert.ok(project.config[key], `${key} is declared in Pulumi.yaml`);
        assert.notEqual(project.config[key].default, undefined, `${key} has its default in Pulumi.yaml`);
      }
      const source = readFileSync(path.join(ROOT, 'components', 'config.ts'), 'utf8');
      assert.doesNotMatch(source, /DEFAULTS|\?\? *String\(/, 'no second copy of the defaults in the program');
    });

    it('every key the program reads is declared (and nothing else is), but the optional registryPassword', () => {
      const source = readFileSync(path.join(ROOT, 'components', 'config.ts'), 'utf8');
      const read = new Set([...source.matchAll(/(?:config\.get(?:Secret)?|optional|str|num|bool|oneOf|quantity|mongoName|username|secret)(?:<\w+>)?\('(\w+)'/g)].map((m) => m[1]));
      for (const key of [...CONFIG_KEYS, ...SECRET_KEYS]) read.add(key);
      read.delete('registryPassword');
      assert.deepEqual([...read].sort(), Object.keys(project.config).sort());
    });

    it('outside the CLI, without Pulumi.yaml\'s defaults applied, the program says so rather than guessing', () => {
      pulumi.runtime.setAllConfig({ [`${PROJECT}:mongoRootPassword`]: 'a', [`${PROJECT}:mongoAppPassword`]: 'b' }, [`${PROJECT}:mongoRootPassword`, `${PROJECT}:mongoAppPassword`]);
      assert.throws(loadConfig, (error: unknown) => {
        assert.ok(error instanceof StackConfigError);
        assert.match(error.message, /namespace has no value: Pulumi\.yaml declares its default, which the Pulumi CLI applies/);
        return true;
      });
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

    it('refuses an application user prefix equal to the backup user\'s (the retire Job would drop one for the other)', () => {
      expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', mongoAppUsername: 'backup' }, ['mongoRootPassword', 'mongoAppPassword'], [/mongoAppUsername "backup" is the backup user's prefix/]);
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

    it('logLevel takes exactly the levels the service takes (its own list), as the service reads them', () => {
      const secrets = ['mongoRootPassword', 'mongoAppPassword'];
      for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
        setConfig({ mongoRootPassword: 'a', mongoAppPassword: 'b', logLevel: level }, secrets);
        assert.equal(loadConfig().service.logLevel, level);
      }
      setConfig({ mongoRootPassword: 'a', mongoAppPassword: 'b', logLevel: 'DEBUG' }, secrets);
      assert.equal(loadConfig().service.logLevel, 'debug', 'handed to the service as it reads it');
      for (const level of ['loud', 'verbose', 'warning']) {
        expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', logLevel: level }, secrets, [
          new RegExp(`logLevel must be one of .*fatal, error, warn, info, debug, trace, silent, got "${level}"`),
        ]);
      }
    });

    it('serviceEnv hands the service its tuning variables, checked by the service\'s own parser', () => {
      const secrets = ['mongoRootPassword', 'mongoAppPassword'];
      setConfig({ mongoRootPassword: 'a', mongoAppPassword: 'b' }, secrets);
      assert.deepEqual(loadConfig().service.tuning, {}, 'none by default');
      setConfig({ mongoRootPassword: 'a', mongoAppPassword: 'b', serviceEnv: ' BODY_LIMIT_BYTES=2097152,  MAX_OPEN_CURSORS=32 STREAM_MAX_MS=60000,' }, secrets);
      assert.deepEqual(loadConfig().service.tuning, { BODY_LIMIT_BYTES: '2097152', MAX_OPEN_CURSORS: '32', STREAM_MAX_MS: '60000' });
      expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', serviceEnv: 'BODY_LIMIT_BYTES=lots MAX_OPEN_CURSORS=0' }, secrets, [
        /serviceEnv: BODY_LIMIT_BYTES must be a whole number from 2 to 16777216, got "lots"/,
        /serviceEnv: MAX_OPEN_CURSORS must be a whole number from 1 to/,
      ]);
      expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', serviceEnv: 'MONGODB_URI=mongodb://elsewhere/ LOG_LEVEL=debug' }, secrets, [
        /serviceEnv cannot set MONGODB_URI: the stack sets it/,
        /serviceEnv cannot set LOG_LEVEL: the stack sets it/,
      ]);
      expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', serviceEnv: 'BODY_LIMT_BYTES=1 tuning' }, secrets, [
        /serviceEnv: the service reads no variable BODY_LIMT_BYTES/,
        /serviceEnv entry "tuning" must be NAME=value/,
      ]);
    });

    it('prebuilt mode refuses :latest and untagged references', () => {
      for (const image of ['me/app:latest', 'me/app']) {
        expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', imageMode: 'prebuilt', image, adminImage: 'me/data-admin:1' }, ['mongoRootPassword', 'mongoAppPassword'], [/exact tag or digest/]);
      }
    });

    it('prebuilt mode needs the admin image too (the users Jobs run it), and says how to make it', () => {
      expectProblems({ mongoRootPassword: 'a', mongoAppPassword: 'b', imageMode: 'prebuilt', image: 'me/app:1' }, ['mongoRootPassword', 'mongoAppPassword'], [
        /imageMode prebuilt needs `adminImage` too: the admin image built from admin\/Dockerfile .*docker build -t <registry>\/data-admin:<tag> admin/,
      ]);
    });
  });

});
