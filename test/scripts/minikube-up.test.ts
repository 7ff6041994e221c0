import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Call, changes, freshMachine, type MachineState, pulumiCalls, Sandbox } from './sandbox';

/**
 * `npm run up` (scripts/minikube-up.sh) against stub minikube, pulumi and
 * kubectl executables that record every call and its environment and simulate
 * the machine: Pulumi logged in or not, a passphrase secrets provider, Minikube
 * absent, stopped or running small, a profile name, a stale docker-env, no terminal.
 */
describe('npm run up (scripts/minikube-up.sh)', function () {
  this.timeout(60_000);
  const PASS = { PULUMI_CONFIG_PASSPHRASE: 'correct horse battery staple' };
  let box: Sandbox;
  afterEach(() => box?.remove());

  const argsOf = (calls: Call[], tool: string, first: string) => calls.filter((c) => c.tool === tool && c.args.includes(first)).map((c) => c.args);
  const assertNoLogin = (calls: Call[]) =>
    assert.deepEqual(
      pulumiCalls(calls).filter((c) => c.args[0] === 'login'),
      [],
      'never `pulumi login` (that would change the backend for every project of the user)',
    );
  const assertNoSecretRead = (calls: Call[]) =>
    assert.deepEqual(
      pulumiCalls(calls).filter((c) => c.args[0] === 'config' && c.args[1] === 'get' && /Password/.test(c.args.join(' '))),
      [],
      'never `pulumi config get` on a secret',
    );

  it('first run on a fresh machine with PULUMI_CONFIG_PASSPHRASE: Minikube, a project-local backend, two generated secrets, pulumi up', async () => {
    box = new Sandbox();
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    const backend = `file://${box.project}/.pulumi`;
    assert.deepEqual(changes(run.calls), [
      'minikube -p minikube start --cpus=4 --memory=6144mb --cni=calico',
      'minikube -p minikube addons enable metrics-server',
      'pulumi stack init dev',
      'pulumi config set --secret mongoRootPassword',
      'pulumi config set --secret mongoAppPassword',
      'pulumi up',
    ]);
    for (const call of pulumiCalls(run.calls).filter((c) => c.args[0] !== 'whoami')) {
      assert.equal(call.env.PULUMI_BACKEND_URL, backend, `${call.args.join(' ')} runs against the project's own backend`);
      assert.equal(call.env.PULUMI_CONFIG_PASSPHRASE, PASS.PULUMI_CONFIG_PASSPHRASE);
    }
    assert.ok(existsSync(path.join(box.project, '.pulumi')), 'the backend directory is created in the project (git-ignored)');
    assert.ok(
      pulumiCalls(run.calls)
        .filter((c) => c.args.includes('--secret'))
        .every((c) => c.stdin && c.args.length === 4),
      'the generated passwords go through stdin, never on a command line',
    );
    const stackFile = box.stackFile();
    assert.match(stackFile, /koa-mongodb:mongoRootPassword:\n\s+secure: v1:/);
    assert.match(stackFile, /koa-mongodb:mongoAppPassword:\n\s+secure: v1:/);
    assertNoLogin(run.calls);
    assertNoSecretRead(run.calls);
    assert.match(run.stdout, /not logged in to a Pulumi backend: keeping this project's state in .*\/\.pulumi \(your `pulumi login` is unchanged\)/);
    assert.match(run.stdout, /export PULUMI_BACKEND_URL=file:\/\//, 'says how to reach the state by hand');
  });

  it('first run with no passphrase and no terminal (CI): fails with the fix before changing anything', async () => {
    box = new Sandbox();
    const before = box.stackFile();
    const run = await box.run();
    assert.equal(run.code, 1);
    assert.match(run.stderr, /keeps its secrets under a passphrase .* no terminal to ask for it/);
    assert.match(run.stderr, /Nothing was changed/);
    assert.match(run.stderr, /export PULUMI_CONFIG_PASSPHRASE_FILE=/);
    assert.deepEqual(changes(run.calls), []);
    assert.equal(box.stackFile(), before);
    assert.ok(!existsSync(path.join(box.project, '.pulumi')));
    assertNoLogin(run.calls);
  });

  it('second run: no password regenerated, no secret decrypted, nothing changed but `pulumi up`', async () => {
    box = new Sandbox();
    assert.equal((await box.run(PASS)).code, 0);
    const stackFile = box.stackFile();
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(changes(run.calls), ['pulumi up']);
    assert.equal(box.stackFile(), stackFile, 'the stack file (and its encrypted passwords) is untouched');
    assertNoSecretRead(run.calls);
    assertNoLogin(run.calls);
  });

  it('second run without the passphrase and without a terminal stops before anything, naming the fix', async () => {
    box = new Sandbox();
    assert.equal((await box.run(PASS)).code, 0);
    const run = await box.run();
    assert.equal(run.code, 1);
    assert.match(run.stderr, /PULUMI_CONFIG_PASSPHRASE/);
    assert.deepEqual(changes(run.calls), []);
  });

  it('a password already in the stack file (from another machine or by hand) is kept; only the missing one is generated', async () => {
    box = new Sandbox();
    assert.equal((await box.run(PASS)).code, 0);
    const withoutApp = box.stackFile().replace(/ {2}koa-mongodb:mongoAppPassword:\n {4}secure: \S+\n/, '');
    writeFileSync(path.join(box.project, 'Pulumi.dev.yaml'), withoutApp);
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(changes(run.calls), ['pulumi config set --secret mongoAppPassword', 'pulumi up']);
  });

  it('logged in to a backend (`pulumi whoami` answers): uses it, asks no passphrase for a Pulumi Cloud stack, never logs in', async () => {
    const machine: MachineState = { ...freshMachine(), pulumi: { login: 'https://api.pulumi.com', stacks: {} } };
    box = new Sandbox(machine);
    const run = await box.run();
    assert.equal(run.code, 0, run.stderr);
    for (const call of pulumiCalls(run.calls)) {
      assert.equal(call.env.PULUMI_BACKEND_URL, undefined, 'the backend of the login, not one of ours');
      assert.equal(call.env.PULUMI_CONFIG_PASSPHRASE, undefined);
    }
    assert.match(run.stdout, /Pulumi backend: https:\/\/api\.pulumi\.com \(your `pulumi login`\)/);
    assert.ok(!existsSync(path.join(box.project, '.pulumi')));
    assertNoLogin(run.calls);
  });

  it('logged in but `pulumi whoami` fails otherwise (offline): stops with its message rather than starting a second, local stack', async () => {
    const offline = 'error: could not reach https://api.pulumi.com: dial tcp: lookup api.pulumi.com: no such host';
    box = new Sandbox({ ...freshMachine(), pulumi: { login: 'https://api.pulumi.com', whoamiError: offline, stacks: {} } });
    const run = await box.run(PASS);
    assert.equal(run.code, 1);
    assert.ok(run.stderr.includes(`\`pulumi whoami\` failed: ${offline}`), run.stderr);
    assert.match(run.stderr, /PULUMI_BACKEND_URL=file:\/\/.*\/\.pulumi npm run up/);
    assert.deepEqual(changes(run.calls), []);
  });

  it('PULUMI_CONFIG_PASSPHRASE_FILE is passed on as it is', async () => {
    box = new Sandbox();
    const file = path.join(box.dir, 'passphrase');
    writeFileSync(file, 'from a file\n');
    const run = await box.run({ PULUMI_CONFIG_PASSPHRASE_FILE: file });
    assert.equal(run.code, 0, run.stderr);
    const up = pulumiCalls(run.calls).find((c) => c.args[0] === 'up')!;
    assert.equal(up.env.PULUMI_CONFIG_PASSPHRASE_FILE, file);
    assert.equal(up.env.PULUMI_CONFIG_PASSPHRASE, undefined);
  });

  it('on a terminal: asks for the passphrase once (with a confirmation for a new stack) and gives it to pulumi only', async () => {
    box = new Sandbox();
    const first = await box.run({}, [], ['s3cret words', 's3cret words']);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(first.stdout.match(/choose a passphrase for the secrets of stack dev/g)?.length, 1, first.stdout);
    assert.equal(first.stdout.match(/the same passphrase again/g)?.length, 1);
    assert.ok(!first.stdout.includes('s3cret'), 'the passphrase is not echoed');
    for (const call of pulumiCalls(first.calls).filter((c) => c.args[0] !== 'whoami')) {
      assert.equal(call.env.PULUMI_CONFIG_PASSPHRASE, 's3cret words', call.args.join(' '));
    }
    for (const call of first.calls.filter((c) => c.tool !== 'pulumi')) {
      assert.equal(call.env.PULUMI_CONFIG_PASSPHRASE, undefined, `${call.tool} does not see the passphrase`);
    }
    const second = await box.run({}, [], ['s3cret words']);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(second.stdout.match(/passphrase of stack dev:/g)?.length, 1, second.stdout);
    assert.deepEqual(changes(second.calls), ['pulumi up']);
  });

  it('MINIKUBE_PROFILE reaches minikube, the stack\'s minikubeProfile and its kubeContext (plain values), once', async () => {
    box = new Sandbox();
    const run = await box.run({ ...PASS, MINIKUBE_PROFILE: 'demo' });
    assert.equal(run.code, 0, run.stderr);
    for (const call of run.calls.filter((c) => c.tool === 'minikube' && !(c.args[0] === 'profile'))) {
      assert.deepEqual(call.args.slice(0, 2), ['-p', 'demo'], call.args.join(' '));
    }
    const sets = changes(run.calls).filter((line) => line.startsWith('pulumi config set') && !line.includes('--secret'));
    assert.deepEqual(sets, ['pulumi config set minikubeProfile demo', 'pulumi config set kubeContext demo']);
    assert.match(box.stackFile(), /koa-mongodb:minikubeProfile: demo/);
    assert.match(box.stackFile(), /koa-mongodb:kubeContext: demo/);
    const again = await box.run({ ...PASS, MINIKUBE_PROFILE: 'demo' });
    assert.deepEqual(changes(again.calls), ['pulumi up']);
  });

  it('starts Minikube without forcing a container runtime; MINIKUBE_DRIVER and MINIKUBE_CONTAINER_RUNTIME are passed when set', async () => {
    box = new Sandbox();
    const run = await box.run({ ...PASS, MINIKUBE_DRIVER: 'kvm2', MINIKUBE_CONTAINER_RUNTIME: 'cri-o' });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [
      ['-p', 'minikube', 'start', '--cpus=4', '--memory=6144mb', '--cni=calico', '--driver=kvm2', '--container-runtime=cri-o'],
    ]);
  });

  it('MINIKUBE_CPUS and MINIKUBE_MEMORY (in MB or GiB, as minikube takes it) are passed as given, even beyond the host', async () => {
    box = new Sandbox({ ...freshMachine(), host: { cpus: 2, memoryMb: 4096 } });
    const run = await box.run({ ...PASS, MINIKUBE_CPUS: '6', MINIKUBE_MEMORY: '8g' });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [['-p', 'minikube', 'start', '--cpus=6', '--memory=8192mb', '--cni=calico']]);
    const bad = await box.run({ ...PASS, MINIKUBE_MEMORY: 'lots' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /MINIKUBE_MEMORY=lots: give MB \(6144\) or GiB \(6g\)/);
  });

  it('on a 2-CPU, 4 GiB host: gives Minikube what there is and says how many pods fit', async () => {
    box = new Sandbox({ ...freshMachine(), host: { cpus: 2, memoryMb: 4096 } });
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [['-p', 'minikube', 'start', '--cpus=2', '--memory=2200mb', '--cni=calico']]);
    assert.match(run.stdout, /this machine has 2 CPUs, so Minikube gets 2, which fit 3 data-service pods at the stack's peak/);
    // The size the script itself chose is not "too small" on the next run.
    const again = await box.run(PASS);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /profile minikube has 2 CPUs|MB of memory, less than/, 'no size warning for a profile the script capped itself');
  });

  it('a Mac whose Docker VM is smaller than the host: sized from `docker info`, not the host (minikube refuses more)', async () => {
    box = new Sandbox({ ...freshMachine(), host: { cpus: 10, memoryMb: 32768 }, docker: { cpus: 2, memoryMb: 3936 } });
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [['-p', 'minikube', 'start', '--cpus=2', '--memory=3424mb', '--cni=calico']]);
    assert.match(run.stdout, /docker's engine \(docker info\) has 3936 MB of memory, so Minikube gets 3424 MB/);
    assert.match(run.stdout, /docker's engine \(docker info\) has 2 CPUs, so Minikube gets 2/);
    assert.deepEqual(changes(run.calls).at(-1), 'pulumi up');
  });

  it('a VM driver set in minikube\'s config is sized from the host, not from the Docker engine', async () => {
    const machine = { ...freshMachine(), host: { cpus: 8, memoryMb: 16384 }, docker: { cpus: 2, memoryMb: 3936 } };
    machine.minikube.configDriver = 'kvm2';
    box = new Sandbox(machine);
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [['-p', 'minikube', 'start', '--cpus=4', '--memory=6144mb', '--cni=calico']], 'kvm2 runs its own VM: the Docker engine is not the limit');
  });

  it('an existing stopped profile is started as it is: no sizing flags for minikube to refuse', async () => {
    const machine = { ...freshMachine(), host: { cpus: 10, memoryMb: 32768 }, docker: { cpus: 4, memoryMb: 3936 } };
    machine.minikube.profiles.minikube = { running: false, CPUs: 4, Memory: 3424, CNI: 'calico', ContainerRuntime: 'docker', Driver: 'docker', addons: { 'metrics-server': true } };
    box = new Sandbox(machine);
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [['-p', 'minikube', 'start']]);
    assert.match(run.stdout, /an existing profile keeps its size/);
  });

  it('pulumi up fails: the exit code is pulumi\'s, and the diagnosis of the failing pods follows', async () => {
    box = new Sandbox();
    box.state = { ...box.state, pulumi: { ...box.state.pulumi, upFails: true } };
    const run = await box.run(PASS, ['--yes']);
    assert.equal(run.code, 255, run.stdout + run.stderr);
    assert.match(run.stderr, /up: diagnosis/, 'scripts/diagnose.ts ran (it cannot reach a cluster here, and says so)');
  });

  it('a running profile with 2 CPUs, 3900 MB and minikube\'s default network: warns with the figures and the fix, and goes on', async () => {
    const machine = freshMachine();
    machine.minikube.profiles.minikube = { running: true, CPUs: 2, Memory: 3900, CNI: '', ContainerRuntime: 'containerd', Driver: 'docker', addons: { 'metrics-server': true } };
    box = new Sandbox(machine);
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(argsOf(run.calls, 'minikube', 'start'), [], 'a running profile is not restarted');
    assert.match(run.stderr, /profile minikube has 2 CPUs; the stack requests 2500m at its peak \(5 data-service pods \+ 1 surge pod x 200m, MongoDB 200m, control plane, CoreDNS, Calico and metrics-server 1100m\), and 2 CPUs fit 3 data-service pods/);
    assert.match(run.stderr, /has 3900 MB of memory, less than the 6144 MB/);
    assert.match(run.stderr, /minikube delete -p minikube/);
    assert.match(run.stderr, /PULUMI_BACKEND_URL=file:\/\/\S+\/\.pulumi pulumi destroy --yes/, 'destroy by hand needs the project-local backend');
    assert.match(run.stderr, /MINIKUBE_PROFILE=minikube npm run up/);
    assert.match(run.stderr, /runs the minikube's default network, which does not enforce NetworkPolicy: .* IGNORED/);
    assert.deepEqual(argsOf(run.calls, 'kubectl', 'get')[0].slice(0, 2), ['--context', 'minikube'], 'and the kube-system pods were asked too');
    assert.deepEqual(changes(run.calls).at(-1), 'pulumi up');
  });

  it('reads the profile with `profile list -o json --light`: a notice printed before the JSON and another, broken profile do not hide it', async () => {
    const machine = freshMachine();
    machine.minikube.profiles.minikube = { running: true, CPUs: 4, Memory: 6144, CNI: 'calico', ContainerRuntime: 'docker', Driver: 'docker', addons: { 'metrics-server': true } };
    machine.minikube.notice = '❗  You are trying to run the amd64 binary on an M1 system. Please consider running the darwin/arm64 binary instead.';
    machine.minikube.brokenProfile = 'old';
    box = new Sandbox(machine);
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    const listings = run.calls.filter((c) => c.tool === 'minikube' && c.args.includes('profile'));
    assert.ok(listings.length > 0 && listings.every((c) => c.args.includes('--light')), 'every listing is --light');
    assert.doesNotMatch(run.stderr, /WARNING/, 'the profile\'s 4 CPUs, 6144 MB and Calico were read despite the notice');
  });

  it('a profile with Calico and enough room: no warning', async () => {
    const machine = freshMachine();
    machine.minikube.profiles.minikube = { running: true, CPUs: 4, Memory: 6144, CNI: 'calico', ContainerRuntime: 'docker', Driver: 'docker', addons: { 'metrics-server': true } };
    box = new Sandbox(machine);
    const run = await box.run(PASS);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /WARNING/);
  });

  it('a stale `eval $(minikube docker-env)` reaches neither pulumi nor minikube', async () => {
    box = new Sandbox();
    const stale = { DOCKER_HOST: 'tcp://127.0.0.1:55001', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/home/u/.minikube/certs', MINIKUBE_ACTIVE_DOCKERD: 'old-profile' };
    const run = await box.run({ ...PASS, ...stale });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.calls.length > 5);
    for (const call of run.calls) {
      for (const name of Object.keys(stale)) assert.equal(call.env[name], undefined, `${call.tool} ${call.args.join(' ')} sees no ${name}`);
    }
    assert.match(run.stdout, /ignoring DOCKER_HOST=tcp:\/\/127\.0\.0\.1:55001 from an earlier `eval \$\(minikube -p old-profile docker-env\)`/);
  });

  it('your own DOCKER_HOST (rootless Docker, colima) is kept: minikube\'s docker driver needs it', async () => {
    box = new Sandbox();
    const run = await box.run({ ...PASS, DOCKER_HOST: 'unix:///run/user/1000/docker.sock' });
    assert.equal(run.code, 0, run.stderr);
    const start = run.calls.find((c) => c.tool === 'minikube' && c.args.includes('start'))!;
    assert.equal(start.env.DOCKER_HOST, 'unix:///run/user/1000/docker.sock');
  });

  it('extra arguments go to `pulumi up` (npm run up -- --yes --skip-preview)', async () => {
    box = new Sandbox();
    const run = await box.run(PASS, ['--yes', '--skip-preview']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(pulumiCalls(run.calls).at(-1)?.args, ['up', '--yes', '--skip-preview']);
  });
});
