/**
 * `npm run up`'s dealings with Pulumi, against the REAL Pulumi CLI (3.248.0,
 * built by devkit/pulumi-engine.ts) with stub minikube and kubectl
 * (test/scripts/cli-stub.js): a project-local file backend, a passphrase
 * secrets provider, no terminal or a terminal, first and second runs. The
 * script's extra arguments are `--help`, so its closing `pulumi up` prints its
 * usage instead of running the program (engine.test.ts runs the program).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ensurePulumiEngine } from '../../devkit/pulumi-engine';
import { Sandbox } from '../scripts/sandbox';

describe('npm run up with the real Pulumi CLI', function () {
  this.timeout(450_000);
  let engine: string;
  let box: Sandbox;
  const PASS = { PULUMI_CONFIG_PASSPHRASE: 'a real passphrase' };
  before(function () {
    this.timeout(40 * 60_000);
    engine = ensurePulumiEngine((line) => console.log(`      ${line}`));
  });
  afterEach(() => box?.remove());

  const state = (b: Sandbox) => path.join(b.project, '.pulumi', '.pulumi', 'stacks', 'koa-mongodb', 'dev.json');
  const pulumiConfig = (b: Sandbox, env: Record<string, string>, showSecrets = false) =>
    JSON.parse(
      execFileSync(path.join(engine, 'pulumi'), ['config', '--json', ...(showSecrets ? ['--show-secrets'] : [])], {
        cwd: b.project,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: b.home, ...b.pulumiEnv, PULUMI_BACKEND_URL: `file://${b.project}/.pulumi`, ...env },
      }),
    ) as Record<string, { value?: string; secret: boolean }>;

  it('without a passphrase or a terminal: stops before the CLI creates anything', async () => {
    box = new Sandbox(undefined, engine);
    const before = box.stackFile();
    const run = await box.run({}, ['--help']);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /Nothing was changed/);
    assert.equal(box.stackFile(), before);
    assert.ok(!existsSync(path.join(box.project, '.pulumi')));
  });

  it('first run: the stack in the project-local backend, two secrets encrypted; second run: the stack file untouched', async () => {
    box = new Sandbox(undefined, engine);
    const first = await box.run(PASS, ['--help']);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /not logged in to a Pulumi backend: keeping this project's state in/, 'the real `pulumi whoami` failed as not logged in');
    assert.ok(existsSync(state(box)), 'the stack lives in <project>/.pulumi');
    assert.ok(!existsSync(path.join(box.pulumiEnv.PULUMI_HOME, 'credentials.json')), 'no `pulumi login` was recorded for the user');
    const stackFile = box.stackFile();
    assert.match(stackFile, /^encryptionsalt: v1:/m);
    assert.match(stackFile, /koa-mongodb:mongoRootPassword:\n\s+secure: v1:/);
    assert.match(stackFile, /koa-mongodb:mongoAppPassword:\n\s+secure: v1:/);
    // Once both required secrets are set, `pulumi config --json` answers without the passphrase.
    const config = pulumiConfig(box, {});
    assert.deepEqual(config['koa-mongodb:mongoRootPassword'], { secret: true });
    assert.equal(pulumiConfig(box, PASS, true)['koa-mongodb:mongoAppPassword'].value?.length, 24, 'the generated password decrypts with the passphrase');

    const second = await box.run(PASS, ['--help']);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.doesNotMatch(second.stdout, /^up: (generating|creating stack|setting)/m);
    assert.equal(box.stackFile(), stackFile, 'no password regenerated, nothing rewritten');
  });

  it('MINIKUBE_PROFILE: the plain keys are set by the real CLI', async () => {
    box = new Sandbox(undefined, engine);
    const run = await box.run({ ...PASS, MINIKUBE_PROFILE: 'demo' }, ['--help']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const config = pulumiConfig(box, {});
    assert.equal(config['koa-mongodb:minikubeProfile'].value, 'demo');
    assert.equal(config['koa-mongodb:kubeContext'].value, 'demo');
  });

  it('on a terminal: the passphrase typed once reaches the real CLI (stack created, secrets readable with it)', async () => {
    box = new Sandbox(undefined, engine);
    const run = await box.run({}, ['--help'], ['typed on a terminal', 'typed on a terminal']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(pulumiConfig(box, { PULUMI_CONFIG_PASSPHRASE: 'typed on a terminal' }, true)['koa-mongodb:mongoRootPassword'].value?.length, 24);
    assert.ok(!run.stdout.includes('typed on a terminal'), 'the passphrase is not echoed');
  });
});
