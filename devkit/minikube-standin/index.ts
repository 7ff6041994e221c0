/**
 * A minikube STAND-IN for the real node (devkit/node): a `minikube` command, put first on PATH by a
 * test, that implements exactly the subcommands and output formats this project calls, backed by the
 * node's containerd and devkit/images' builder. The real minikube cannot be had on this machine (no
 * GitHub downloads, and the Go module proxy does not serve it). Each behaviour follows minikube's
 * source (HEAD, v1.38.x), quirks included; where it cannot, the difference is named here:
 *
 *   start [-p P] [--cpus N --memory M …]   starts the profile's cluster (creating the profile if needed)
 *   delete [-p P]                           stops it and forgets the profile (its node's disk goes with it)
 *   status [-p P]                           minikube's text, exit 0 running, 7 stopped, 85 no such profile
 *   ip [-p P]                               192.168.49.2 (the docker driver's first node address)
 *   profile list -o json [--light]          {"invalid":[],"valid":[{Name, Status, Config:{…}}]} (light: Status "Skipped")
 *   addons list -o json | addons enable metrics-server
 *   stop [-p P]                             stops the profile's cluster; the profile stays (status Stopped)
 *   image build -t TAG [-f FILE] [--all] DIR | image ls --format short|json | image rm NAME   (see images.ts)
 *
 * Differences from minikube: one profile runs at a time (the node's addresses are fixed); the kube
 * context's server is https://192.168.49.2:8443 with insecure-skip-tls-verify (no minikube CA); the
 * node runs the bridge CNI (NetworkPolicy not enforced); `--cpus`/`--memory` are recorded as minikube
 * records them, not enforced; a deleted profile's node is gone with everything on it, as after
 * `minikube delete`.
 *
 * The command is a thin client (client.js) of a server in the test process, which owns the node.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { KubeClient } from '../kube';
import { createAll } from '../node/apply';
import { metricsServerManifests } from '../node/addons';
import { LINK } from '../node/namespace';
import { startNodeCluster, type LocalNode } from '../node/node';
import { scratchDir } from '../scratch';
import { NodeImages, normalizeReference, type BuildRecord, type Output } from './images';

/** The port of a Minikube node's API server. */
export const NODE_API_PORT = 8443;

export interface StandInOptions {
  log?: (line: string) => void;
  /** metrics-server's --metric-resolution once enabled (Minikube's addon: 60s). */
  metricResolution?: string;
  /**
   * Images a node would pull from a registry (there is none here): imported into every node the
   * stand-in starts, also tagged `as` (a stable, version-like reference for the stack's config).
   */
  registryImages?: Array<{ archive: string; as: string }>;
}

interface Profile {
  name: string;
  config: { cpus: number; memoryMb: number; runtime: string; driver: string };
  cluster?: { plane: { kubeconfig: string }; node: LocalNode; stop(): Promise<void> };
  addons: { 'metrics-server': boolean };
}

export interface MinikubeStandIn {
  /** Environment for the processes that are to find this minikube: PATH first, KUBECONFIG, MINIKUBE_HOME. */
  env: Record<string, string>;
  profile: string;
  nodeIp: string;
  /** The kubeconfig the stand-in writes, as minikube writes ~/.kube/config (context = profile). */
  kubeconfig: string;
  /** Every `image build` so far, in order. */
  builds: BuildRecord[];
  /** The running node, if any (for tests that look inside it). */
  node(): LocalNode | undefined;
  /** Runs the stand-in's `minikube` as a user would, returning its output and exit code. */
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

const USAGE_EXIT = 64;

export async function startMinikubeStandIn(options: StandInOptions = {}): Promise<MinikubeStandIn> {
  const log = options.log ?? ((line: string) => console.log(line));
  const home = scratchDir('koa-minikube-home-');
  const bin = path.join(home, 'bin');
  mkdirSync(bin);
  const socketPath = path.join(home, 'standin.sock');
  const kubeconfig = path.join(home, 'kubeconfig');
  writeFileSync(path.join(bin, 'minikube'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(__dirname, 'client.js')}" "${socketPath}" "$@"\n`, { mode: 0o755 });

  const profiles = new Map<string, Profile>();
  const images = new NodeImages(log);
  let queue: Promise<unknown> = Promise.resolve();

  const writeKubeconfig = () => {
    const running = [...profiles.values()].filter((p) => p.cluster);
    const entries = running.map((p) => {
      const source = parse(readFileSync(p.cluster!.plane.kubeconfig, 'utf8')) as { users: Array<{ user: { token: string } }> };
      return { name: p.name, token: source.users[0].user.token };
    });
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: entries.map((e) => ({ name: e.name, cluster: { server: `https://${LINK.node}:${NODE_API_PORT}`, 'insecure-skip-tls-verify': true } })),
        users: entries.map((e) => ({ name: e.name, user: { token: e.token } })),
        contexts: entries.map((e) => ({ name: e.name, context: { cluster: e.name, user: e.name, namespace: 'default' } })),
        'current-context': entries[0]?.name ?? '',
      }),
      { mode: 0o600 },
    );
  };

  const start = async (name: string, flags: Flags, out: Output) => {
    let profile = profiles.get(name);
    if (profile?.cluster) {
      out.stdout(`🏄  Done! kubectl is now configured to use "${name}" cluster and "default" namespace by default\n`);
      return 0;
    }
    const other = [...profiles.values()].find((p) => p.cluster);
    if (other) {
      out.stderr(`minikube (stand-in): profile "${other.name}" runs; the stand-in runs one profile at a time\n`);
      return USAGE_EXIT;
    }
    if (!profile) {
      // minikube keeps the size and runtime a profile was created with; a later start ignores new flags.
      profile = {
        name,
        config: {
          cpus: Number(flags.cpus ?? 2),
          memoryMb: Number.parseInt(String(flags.memory ?? '6144'), 10),
          // minikube's default runtime is docker (cmd/minikube/cmd/start.go defaultRuntime).
          runtime: String(flags['container-runtime'] ?? flags.c ?? 'docker'),
          driver: String(flags.driver ?? 'docker'),
        },
        addons: { 'metrics-server': false },
      };
      if (!['docker', 'containerd'].includes(profile.config.runtime)) {
        out.stderr(`minikube (stand-in): the stand-in plays the docker and containerd runtimes, not ${profile.config.runtime}\n`);
        return USAGE_EXIT;
      }
      profiles.set(name, profile);
    }
    out.stdout(`😄  [${name}] minikube (stand-in on the real node)\n🔥  Creating ${profile.config.driver} container (CPUs=${profile.config.cpus}, Memory=${profile.config.memoryMb}MB) ...\n`);
    profile.cluster = await startNodeCluster(log, { metricsServer: false, nodeApiPort: NODE_API_PORT });
    for (const image of options.registryImages ?? []) {
      const [imported] = await profile.cluster.node.importImage(image.archive);
      await profile.cluster.node.ctr(['images', 'tag', '--force', imported, normalizeReference(image.as)]);
    }
    if (profile.addons['metrics-server']) await enableMetricsServer(profile);
    writeKubeconfig();
    out.stdout(`🏄  Done! kubectl is now configured to use "${name}" cluster and "default" namespace by default\n`);
    return 0;
  };

  const enableMetricsServer = async (profile: Profile) => {
    const api = KubeClient.fromKubeconfig(profile.cluster!.plane.kubeconfig);
    await createAll(api, metricsServerManifests(options.metricResolution));
    profile.addons['metrics-server'] = true;
  };

  const remove = async (name: string, out: Output) => {
    const profile = profiles.get(name);
    if (!profile) {
      out.stdout(`🤷  Profile "${name}" not found.\n`);
      return 0;
    }
    out.stdout(`🔥  Deleting "${name}" in ${profile.config.driver} ...\n`);
    await profile.cluster?.stop();
    profiles.delete(name);
    writeKubeconfig();
    out.stdout(`💀  Removed all traces of the "${name}" cluster.\n`);
    return 0;
  };

  /** `minikube stop`: the profile stays, its cluster stops (here its node goes with its disk: see the header). */
  const stopProfile = async (name: string, out: Output) => {
    const profile = profiles.get(name);
    if (!profile) {
      out.stderr(`🤷  Profile "${name}" not found. Run "minikube profile list" to view all profiles.\n`);
      return 85;
    }
    out.stdout(`✋  Stopping node "${name}"  ...\n`);
    await profile.cluster?.stop();
    profile.cluster = undefined;
    writeKubeconfig();
    out.stdout('🛑  1 node stopped.\n');
    return 0;
  };

  const handle = async (args: string[], cwd: string, out: Output): Promise<number> => {
    const { words, flags } = parseArgs(args);
    const name = String(flags.p ?? flags.profile ?? 'minikube');
    const profile = profiles.get(name);
    const running = profile?.cluster;
    const notFound = () => {
      out.stderr(`🤷  Profile "${name}" not found. Run "minikube profile list" to view all profiles.\n👉  To start a cluster, run: "minikube start -p ${name}"\n`);
      return 85;
    };
    const command = words.join(' ');
    if (words[0] === 'start') return start(name, flags, out);
    if (words[0] === 'delete') return remove(name, out);
    if (words[0] === 'stop') return stopProfile(name, out);
    if (words[0] === 'status') {
      if (!profile) return notFound();
      const state = running ? 'Running' : 'Stopped';
      out.stdout(`${name}\ntype: Control Plane\nhost: ${state}\nkubelet: ${state}\napiserver: ${state}\nkubeconfig: ${running ? 'Configured' : 'Stopped'}\n\n`);
      return running ? 0 : 7; // minikube's status flags: host 1 | cluster 2 | kubernetes 4 (cmd/minikube/cmd/status.go)
    }
    if (words[0] === 'ip') {
      if (!profile) return notFound();
      out.stdout(`${LINK.node}\n`);
      return 0;
    }
    if (command === 'profile list') {
      if ((flags.o ?? flags.output) !== 'json') return unsupported(args, out);
      // printProfilesJSON in cmd/minikube/cmd/config/profile_list.go: a one-node profile's status is its API server's.
      const valid = [...profiles.values()].map((p) => ({
        Name: p.name,
        // --light skips the status check (updateProfilesStatus): "Skipped".
        Status: flags.light || flags.l ? 'Skipped' : p.cluster ? 'Running' : 'Stopped',
        Config: {
          Name: p.name,
          Driver: p.config.driver,
          CPUs: p.config.cpus,
          Memory: p.config.memoryMb,
          KubernetesConfig: { KubernetesVersion: 'v1.34.4', ClusterName: p.name, ContainerRuntime: p.config.runtime, CNI: 'bridge' },
          Nodes: [{ Name: '', IP: LINK.node, Port: NODE_API_PORT, ControlPlane: true, Worker: true }],
        },
        Active: p.name === 'minikube',
      }));
      out.stdout(JSON.stringify({ invalid: [], valid }));
      return 0;
    }
    if (words[0] === 'addons') {
      if (!profile) return notFound();
      if (words[1] === 'list' && (flags.o ?? flags.output) === 'json') {
        out.stdout(`${JSON.stringify({ 'metrics-server': { Profile: name, Status: profile.addons['metrics-server'] ? 'enabled' : 'disabled' } })}\n`);
        return 0;
      }
      if (words[1] === 'enable' && words[2] === 'metrics-server') {
        if (!running) return exitStopped(name, out);
        if (!profile.addons['metrics-server']) await enableMetricsServer(profile);
        out.stdout("🌟  The 'metrics-server' addon is enabled\n");
        return 0;
      }
      return unsupported(args, out);
    }
    if (words[0] === 'image') {
      if (!profile) return notFound();
      // Every image command visits only Running nodes (machine.BuildImage, ListImages, RemoveImages
      // check each node's status first): on a stopped profile it does nothing and exits 0.
      if (words[1] === 'build' && words[2]) {
        const tag = String(flags.t ?? flags.tag ?? '');
        const file = flags.f ?? flags.file;
        // image.go: a local directory is packed (createTar) before any node is looked at; a failure is fatal.
        if (!running) {
          await images.pack(path.resolve(cwd, words[2]), typeof file === 'string' ? file : undefined);
          return 0;
        }
        // One node: --all and the default (the primary control plane) build on the same one.
        await images.build(running.node, { name, runtime: profile.config.runtime }, tag, path.resolve(cwd, words[2]), typeof file === 'string' ? file : undefined, out).catch((error: Error) => {
          throw Object.assign(new Error(`Failed to save dir: ${error.message}`), { exitCode: 80 });
        });
        return 0; // even when the build failed: see NodeImages.build
      }
      if (words[1] === 'ls' || words[1] === 'list') {
        const format = flags.format ?? 'short';
        if (format === 'json') out.stdout(`${JSON.stringify(running ? await images.listJson(running.node) : [])}\n`);
        else if (format === 'short') out.stdout(`${(running ? await images.list(running.node) : []).join('\n')}\n`);
        else return unsupported(args, out);
        return 0;
      }
      if ((words[1] === 'rm' || words[1] === 'remove' || words[1] === 'unload') && words[2]) {
        if (!running) return 0;
        const failures: string[] = [];
        for (const image of words.slice(2)) {
          const failure = await images.remove(running.node, profile.config.runtime, image);
          if (failure) failures.push(failure);
        }
        // RemoveImages: out.WarningT("Failed to remove images for profile {{.pName}} {{.error}}"), exit 0.
        if (failures.length) out.stderr(`❗  Failed to remove images for profile ${name} error removing images: ${failures[0]}\n`);
        return 0;
      }
    }
    return unsupported(args, out);
  };

  const server = net.createServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      const request = JSON.parse(buffered.slice(0, newline)) as { args: string[]; cwd: string };
      const send = (message: object) => socket.writable && socket.write(`${JSON.stringify(message)}\n`);
      const out: Output = { stdout: (text) => send({ stdout: text }), stderr: (text) => send({ stderr: text }) };
      // One command at a time, as minikube's own machine lock serialises them.
      const done = queue.then(() => handle(request.args, request.cwd, out)).then(
        (code) => send({ exit: code }),
        (error: Error & { exitCode?: number }) =>
          send(error.exitCode ? { stderr: `❌  Exiting due to GUEST_IMAGE_BUILD: ${error.message}\n`, exit: error.exitCode } : { stderr: `minikube (stand-in): ${error.stack ?? error.message}\n`, exit: 1 }),
      );
      queue = done.then(() => socket.end());
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));

  const env = { PATH: `${bin}${path.delimiter}${process.env.PATH}`, KUBECONFIG: kubeconfig, MINIKUBE_HOME: home };
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(path.join(bin, 'minikube'), args, { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  return {
    env,
    profile: 'minikube',
    nodeIp: LINK.node,
    kubeconfig,
    builds: images.builds,
    node: () => [...profiles.values()].find((p) => p.cluster)?.cluster?.node,
    run,
    async stop() {
      await queue.catch(() => undefined);
      await new Promise((resolve) => server.close(resolve));
      for (const profile of profiles.values()) await profile.cluster?.stop();
      profiles.clear();
      await images.stop();
    },
  };
}

type Flags = Record<string, string | boolean>;

/** minikube's (cobra's) flags as this project passes them: `-p X`, `--profile X`, `--profile=X`, `--all`. */
function parseArgs(args: string[]): { words: string[]; flags: Flags } {
  const BOOLEAN = new Set(['all', 'push', 'alsologtostderr', 'light', 'l']);
  const words: string[] = [];
  const flags: Flags = {};
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    const match = /^--?([\w-]+)(?:=(.*))?$/.exec(arg);
    if (!match || arg === '-') {
      words.push(arg);
    } else if (match[2] !== undefined) {
      flags[match[1]] = match[2];
    } else if (BOOLEAN.has(match[1])) {
      flags[match[1]] = true;
    } else {
      flags[match[1]] = args[i + 1] ?? '';
      i += 1;
    }
  }
  return { words, flags };
}

function unsupported(args: string[], out: Output): number {
  out.stderr(`minikube (stand-in): \`minikube ${args.join(' ')}\` is not one of the calls the stand-in implements (see devkit/minikube-standin/index.ts)\n`);
  return USAGE_EXIT;
}

function exitStopped(name: string, out: Output): number {
  out.stderr(`🤷  The control-plane node ${name} host is not running: state=Stopped\n👉  To start a cluster, run: "minikube start -p ${name}"\n`);
  return 80;
}
