/**
 * Stand-ins for `minikube`, `pulumi`, `kubectl`, `docker` and `getconf`, for the test of
 * scripts/minikube-up.sh. Each call is appended to STUB_LOG (one JSON line: the
 * command, its arguments, the environment variables the script must control,
 * and whether a value came on stdin), and answers from the simulated machine in
 * STUB_STATE (a JSON file the stubs update, as the real tools would change the
 * machine). The Pulumi stand-in models what the real CLI 3.248 does with a
 * passphrase secrets provider (checked against it, and by
 * test/cluster/up-script.test.ts): creating a stack, setting or reading a
 * secret, and `up` need the passphrase, a plain `config set` and
 * `stack select` do not; the stack file records the salt and `secure:` values.
 *
 * Plain CommonJS run by node directly: dozens of calls per test, no tsx start-up.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parse, stringify } = require('yaml');

const [tool, ...args] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(process.env.STUB_STATE, 'utf8'));
const save = () => fs.writeFileSync(process.env.STUB_STATE, JSON.stringify(state, null, 2));
const WATCHED = ['PULUMI_BACKEND_URL', 'PULUMI_CONFIG_PASSPHRASE', 'PULUMI_CONFIG_PASSPHRASE_FILE', 'DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'MINIKUBE_ACTIVE_DOCKERD'];
/** All of stdin; a non-blocking pipe answers EAGAIN until the writer has written. */
function readStdin() {
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buffer, 0, buffer.length, null);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      continue;
    }
    if (n === 0) return Buffer.concat(chunks).toString('utf8');
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
}
const readsValue = tool === 'pulumi' && args[0] === 'config' && args[1] === 'set' && args.filter((a) => !a.startsWith('-')).length === 3;
const stdinValue = readsValue ? readStdin() : undefined;
fs.appendFileSync(
  process.env.STUB_LOG,
  `${JSON.stringify({ tool, args, env: Object.fromEntries(WATCHED.filter((k) => k in process.env).map((k) => [k, process.env[k]])), stdin: stdinValue !== undefined })}\n`,
);

const out = (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const fail = (message, code = 255) => {
  process.stderr.write(`${message}\n`);
  process.exit(code);
};

function minikube() {
  if (state.minikube.notice) process.stdout.write(`${state.minikube.notice}\n`);
  let profile = 'minikube';
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-p' || args[i] === '--profile') profile = args[++i];
    else if (args[i].startsWith('--profile=')) profile = args[i].slice('--profile='.length);
    else rest.push(args[i]);
  }
  const profiles = state.minikube.profiles;
  const flag = (name) => rest.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const [command, sub] = rest;
  if (command === 'status') {
    if (!profiles[profile]) fail(`Profile "${profile}" not found. Run "minikube profile list" to view all profiles.`, 85);
    if (!profiles[profile].running) fail(`${profile}\ntype: Control Plane\nhost: Stopped`, 7);
    return out(`${profile}\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running`);
  }
  if (command === 'config' && sub === 'get') {
    // minikube's config is global; -p changes nothing here.
    if (rest[2] === 'driver' && state.minikube.configDriver) return out(state.minikube.configDriver);
    fail('Error: specified key could not be found in config', 14);
  }
  if (command === 'start') {
    // The docker and podman drivers refuse more than the engine has (cmd/minikube/cmd/start_flags.go,
    // start.go), for a new profile and for flags given to an existing one alike.
    const driver = profiles[profile]?.Driver ?? flag('driver') ?? state.minikube.configDriver ?? (state.docker ? 'docker' : 'kvm2');
    if ((driver === 'docker' || driver === 'podman') && state.docker) {
      const asked = flag('memory');
      const mb = asked && (/g/i.test(asked) ? Number.parseFloat(asked) * 1024 : Number.parseInt(asked, 10));
      if (mb && mb > state.docker.memoryMb) fail(`X Exiting due to MK_USAGE: Docker Desktop has only ${state.docker.memoryMb}MB memory but you specified ${mb}MB`, 14);
      if (flag('cpus') && Number(flag('cpus')) > state.docker.cpus) fail(`X Exiting due to RSRC_INSUFFICIENT_CORES: Docker Desktop has only ${state.docker.cpus} CPUs available, but requested ${flag('cpus')} CPUs`, 29);
    }
    if (profiles[profile]) profiles[profile].running = true; // minikube keeps an existing profile's size and network
    else {
      const memory = flag('memory') ?? '3900mb';
      profiles[profile] = {
        running: true,
        CPUs: Number(flag('cpus') ?? 2),
        Memory: /g/i.test(memory) ? Number.parseFloat(memory) * 1024 : Number.parseInt(memory, 10),
        CNI: flag('cni') ?? '',
        ContainerRuntime: flag('container-runtime') ?? 'containerd',
        Driver: driver,
        addons: {},
      };
    }
    save();
    return out(`Done! kubectl is now configured to use "${profile}" cluster`);
  }
  if (command === 'profile' && sub === 'list') {
    // --light lists the configs only (Status "Skipped"); the full form checks every profile's machine,
    // and one that cannot be inspected aborts the whole listing (cmd/minikube/cmd/config/profile_list.go).
    const light = rest.includes('--light') || rest.includes('-l');
    if (!light && state.minikube.brokenProfile) fail(`X Exiting due to GUEST_STATUS: Unable to get control-plane node ${state.minikube.brokenProfile} host status: state: unknown state "${state.minikube.brokenProfile}"`, 80);
    const valid = Object.entries(profiles).map(([name, p]) => ({
      Name: name,
      Status: light ? 'Skipped' : p.running ? 'Running' : 'Stopped',
      Config: { Name: name, CPUs: p.CPUs, Memory: p.Memory, Driver: p.Driver, KubernetesConfig: { ContainerRuntime: p.ContainerRuntime, CNI: p.CNI } },
    }));
    return out(JSON.stringify({ invalid: [], valid }));
  }
  if (command === 'addons' && sub === 'list') {
    const p = profiles[profile] ?? { addons: {} };
    return out(JSON.stringify({ 'metrics-server': { Profile: profile, Status: p.addons['metrics-server'] ? 'enabled' : 'disabled' } }));
  }
  if (command === 'addons' && sub === 'enable') {
    profiles[profile].addons[rest[2]] = true;
    save();
    return out(`The '${rest[2]}' addon is enabled`);
  }
  fail(`minikube stub: unexpected ${args.join(' ')}`, 64);
}

function pulumi() {
  const cloud = 'https://api.pulumi.com';
  const backend = process.env.PULUMI_BACKEND_URL ?? state.pulumi.login;
  const passphrase =
    process.env.PULUMI_CONFIG_PASSPHRASE ??
    (process.env.PULUMI_CONFIG_PASSPHRASE_FILE ? fs.readFileSync(process.env.PULUMI_CONFIG_PASSPHRASE_FILE, 'utf8').trim() : undefined);
  const needPassphrase = () => {
    if (passphrase === undefined) {
      fail('error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables');
    }
    if (state.pulumi.passphrase !== undefined && state.pulumi.passphrase !== passphrase) fail('error: incorrect passphrase');
  };
  const stacks = (state.pulumi.stacks[backend ?? ''] ??= []);
  const stackFile = (name) => path.join(process.cwd(), `Pulumi.${name}.yaml`);
  const readStack = (name) => (fs.existsSync(stackFile(name)) ? (parse(fs.readFileSync(stackFile(name), 'utf8')) ?? {}) : {});
  const usesPassphrase = (name) => Boolean(readStack(name).encryptionsalt);
  const [command, sub, ...rest] = args;
  const positional = rest.filter((a) => !a.startsWith('-'));

  if (command === 'whoami') {
    if (state.pulumi.whoamiError) fail(state.pulumi.whoamiError);
    if (!backend) fail('error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions');
    return out(`User: tester\nOrganizations: tester\nBackend URL: ${backend}`);
  }
  if (command === 'login') {
    // Changes the backend of every project of the user (~/.pulumi/credentials.json).
    state.pulumi.login = sub === '--local' ? 'file://~' : (sub ?? cloud);
    save();
    return out(`Logged in to ${state.pulumi.login}`);
  }
  if (command === 'version') return out('v3.248.0');
  if (!backend) fail('error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions');
  if (command === 'stack' && sub === 'select') {
    if (!stacks.includes(rest[0])) fail(`error: no stack named '${rest[0]}' found`);
    state.pulumi.current = rest[0];
    return save();
  }
  if (command === 'stack' && sub === 'init') {
    if (stacks.includes(rest[0])) fail(`error: stack '${rest[0]}' already exists`);
    if (!backend.startsWith('https://')) {
      needPassphrase();
      state.pulumi.passphrase = passphrase;
      const doc = readStack(rest[0]);
      fs.writeFileSync(stackFile(rest[0]), stringify({ encryptionsalt: 'v1:c3R1Yg==:v1:stub', ...doc }));
    }
    stacks.push(rest[0]);
    state.pulumi.current = rest[0];
    return save();
  }
  const current = state.pulumi.current;
  if (!current) fail('error: no stack selected');
  if (command === 'config' && sub === 'set') {
    const secret = rest.includes('--secret');
    const [key, value = stdinValue] = positional;
    // The real CLI needs the passphrase to encrypt a secret; a plain value it writes without it.
    if (secret && usesPassphrase(current)) needPassphrase();
    const doc = readStack(current);
    doc.config = { ...(doc.config ?? {}), [`koa-mongodb:${key}`]: secret ? { secure: `v1:${Buffer.from(value).toString('base64')}` } : value };
    fs.writeFileSync(stackFile(current), stringify(doc));
    return undefined;
  }
  if (command === 'config' && sub === 'get') {
    // minikube's config is global; -p changes nothing here.
    const entry = readStack(current).config?.[`koa-mongodb:${positional[0]}`];
    if (entry === undefined) fail(`error: configuration key 'koa-mongodb:${positional[0]}' not found for stack '${current}'`);
    if (typeof entry === 'object') {
      if (usesPassphrase(current)) needPassphrase();
      return out(Buffer.from(entry.secure.slice(3), 'base64').toString());
    }
    return out(String(entry));
  }
  if (command === 'up') {
    if (usesPassphrase(current)) needPassphrase();
    if (state.pulumi.upFails) fail('error: 1 error occurred:\n\t* the Kubernetes API server reported that "koa-mongodb/data-service" failed to fully initialize', 255);
    return out('Resources:\n    12 unchanged');
  }
  fail(`pulumi stub: unexpected ${args.join(' ')}`, 64);
}

function kubectl() {
  const context = args[args.indexOf('--context') + 1];
  const profile = state.minikube.profiles[context];
  if (args.includes('get') && args.includes('kube-system')) {
    if (profile && ['calico', 'cilium'].includes(profile.CNI)) out(`pod/${profile.CNI === 'calico' ? 'calico-node' : 'cilium'}-x7k2p`);
    return undefined;
  }
  fail(`kubectl stub: unexpected ${args.join(' ')}`, 64);
}

function docker() {
  if (args[0] === 'info' && state.docker) {
    if (args.includes('--format')) return out(`${state.docker.memoryMb * 1048576} ${state.docker.cpus}`);
    return out('Server:\n Containers: 0');
  }
  fail('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?', 1);
}

function getconf() {
  const answers = { _NPROCESSORS_ONLN: state.host.cpus, _PHYS_PAGES: state.host.memoryMb * 256, PAGE_SIZE: 4096 };
  if (!(args[0] in answers)) fail(`getconf stub: unexpected ${args[0]}`, 64);
  out(String(answers[args[0]]));
}

({ minikube, pulumi, kubectl, docker, getconf })[tool]();
