/**
 * Minikube's containerd-runtime build path, for the stand-in: BuildKit inside the node, driven as minikube
 * drives it. Sources followed (kubernetes/minikube at eb25dbc, fetched with the `fetch` tool):
 *
 *  - deploy/kicbase/Dockerfile: `ARG BUILDKIT_VERSION="v0.32.2"`; the release's buildkitd and buildctl in
 *    /usr/local/bin, started by BuildKit's examples/systemd buildkit.socket/.service (`buildkitd --addr fd://`
 *    on /run/buildkit/buildkitd.sock), and /etc/buildkit/buildkitd.toml:
 *        [worker.oci]
 *          enabled = false
 *        [worker.containerd]
 *          enabled = true
 *          namespace = "k8s.io"
 *  - pkg/minikube/cruntime/containerd.go, (*Containerd).BuildImage: in the node,
 *        sudo buildctl build --frontend dockerfile.v0 --local context=<dir> --local dockerfile=<dir>
 *             --output type=image[,name=<tag, ":latest" added when it has no ":">][,push=true]  ["--"+opt …]
 *    with the process environment plus `--build-env`, its output on minikube's stdout/stderr.
 *  - pkg/minikube/machine/build_images.go, BuildImage: the tag is `dockerref.ParseNormalizedNamed(tag).String()`
 *    (docker.io/library/… for a short name) before it gets here (the caller's job: images.ts normalizeReference).
 *
 * The image lands in containerd's k8s.io namespace, where the kubelet (CRI) finds it: no save, no import.
 *
 * What runs where (one node per machine, see devkit/node):
 *   node namespaces   buildkitd (containerd worker only, namespace k8s.io, the node's containerd socket,
 *                     network mode host = the node's own network namespace), its state in the node's tmpfs
 *                     /var/lib/buildkit and its socket /run/buildkit/buildkitd.sock (minikube's path);
 *                     a relay 127.0.0.1:3128 → the egress proxy's unix socket; `buildctl build` (via nsenter)
 *   host side         devkit/images' egress proxy (CONNECT to the npm registry only) on <node dir>/egress.sock
 *   build containers  run by the node's containerd + runc in the node's network namespace, cgroups under the
 *                     node's cgroup root (so the node's teardown kills and removes them)
 * All three daemons are the node's (LocalNode.daemon): stopped with it, dead with us (setpriv --pdeathsig).
 *
 * Stand-in quirks (not the product's, which runs on real Minikube):
 *  - No registry: the service Dockerfile's `FROM ${NODE_IMAGE}` names the base made by devkit/images
 *    (ensureBaseImage), imported into the node's containerd (node.importImage). BuildKit is told to take it
 *    from the node's image store with the dockerfile frontend's own `image-resolve-mode=local` opt (BuildKit's
 *    "prefer local": source/containerimage asks the worker's image store, the containerd k8s.io namespace,
 *    before any registry). Chosen over a local registry in the node because it is one documented frontend
 *    option passed the way a minikube user passes any (`--build-opt=opt=image-resolve-mode=local`), it changes
 *    nothing in buildkitd's configuration, and the build then reads exactly the image the pods would run.
 *  - The only way out is the egress proxy: RUN steps get `HTTPS_PROXY=http://127.0.0.1:3128` as a build
 *    argument (a predefined one, not recorded in the image), the same as devkit/images' dockerd builds.
 *  - `networkMode = "host"` is written out: kicbase leaves it "auto", which is host too when there is no
 *    /etc/buildkit/cni.json, but the node shares the host's /etc, so a CNI file there must not switch it.
 *  - `defaultCgroupParent` = the node's cgroup root: kicbase's default would create /buildkit in the host's
 *    cgroup hierarchies and leave it there after the node is gone.
 *  - buildkitd runs as a supervised daemon of the node (no systemd socket activation); buildctl is called by
 *    its path in the cache, without `sudo` (we are root already); the argv is otherwise minikube's.
 *  - Built with CGO off and without the `seccomp` build tag of BuildKit's release binaries (this machine's
 *    Go builds are static and cgo-free): RUN containers get no seccomp profile from BuildKit.
 *  - containerd is Debian bookworm's 1.6.20, not kicbase's 1.7/2.x: BuildKit v0.32's containerd worker (a
 *    containerd 2.x client) works against it (test/node/buildkit.test.ts builds, runs and lists with it).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureGoTool } from '../go-build';
import { allowedEgressHosts } from '../images/egress-proxy';
import { CONTAINERD_SOCKET } from '../node/config';
import type { LocalNode } from '../node/node';
import { GO_MODULES, cacheEntry } from '../paths';
import { waitReady, type Supervised } from '../supervisor';

/** kicbase's BuildKit (deploy/kicbase/Dockerfile, BUILDKIT_VERSION); devkit/go/buildkit pins the same module version. */
export const BUILDKIT_VERSION = 'v0.32.2';
/** buildctl's and buildkitd's default address, where kicbase's buildkit.socket listens. */
export const BUILDKITD_ADDRESS = 'unix:///run/buildkit/buildkitd.sock';
/** Loopback port, in the node's network namespace, of the relay to the egress proxy (devkit/images uses the same). */
export const EGRESS_PORT = 3128;

export interface BuildkitBinaries {
  buildkitd: string;
  buildctl: string;
}

/** buildkitd and buildctl from devkit/go/buildkit, built once per machine into the cache (first build about 3 min on this 2-core machine; 17 s to relink with a warm Go build cache). */
export function ensureBuildkit(log: (line: string) => void = console.log): BuildkitBinaries {
  const dir = cacheEntry('buildkit', ['buildkit']);
  const pkg = 'github.com/moby/buildkit';
  // The version stamp of BuildKit's release builds (its Dockerfile's buildkit-version stage), without the git revision the proxy does not carry.
  const ldflags = `-s -w -X ${pkg}/version.Version=${BUILDKIT_VERSION} -X ${pkg}/version.Package=${pkg}`;
  ensureGoTool(
    {
      what: `BuildKit ${BUILDKIT_VERSION} buildkitd, buildctl (devkit/go/buildkit)`,
      firstBuild: 'several minutes',
      into: { dir, names: ['buildkitd', 'buildctl'] },
      build: { cwd: path.join(GO_MODULES, 'buildkit'), packages: [`${pkg}/cmd/buildkitd`, `${pkg}/cmd/buildctl`], ldflags },
    },
    log,
  );
  return { buildkitd: path.join(dir, 'buildkitd'), buildctl: path.join(dir, 'buildctl') };
}

/** kicbase's /etc/buildkit/buildkitd.toml, with the stand-in's additions (see the file's comment). */
export function buildkitdConfig(options: { cgroupParent: string }): string {
  return `# kicbase's /etc/buildkit/buildkitd.toml (kubernetes/minikube deploy/kicbase/Dockerfile):
[worker.oci]
  enabled = false
[worker.containerd]
  enabled = true
  namespace = "k8s.io"
  # The stand-in's additions: kicbase's defaults, written out or kept off the host.
  address = "${CONTAINERD_SOCKET}"
  networkMode = "host"
  defaultCgroupParent = "${options.cgroupParent}"
`;
}

/** `node -e RELAY_TO_UNIX <host> <port> <socket>`: TCP on host:port to a unix socket, both ways. */
const RELAY_TO_UNIX = `
const net = require('node:net');
const [host, port, socket] = process.argv.slice(1);
net.createServer((client) => {
  const upstream = net.connect(socket);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream).pipe(client);
}).listen(Number(port), host, () => console.log('listening'));
`;

export interface Buildkitd {
  binaries: BuildkitBinaries;
  /** `buildkitd --version`, e.g. "buildkitd github.com/moby/buildkit v0.32.2". */
  version: string;
  daemon: Supervised;
  /** Stops buildkitd and its egress (node.stop() does it too). */
  stop(): Promise<void>;
}

/** A node daemon's log; with `fromNow`, only what is written after this call. */
function logged(node: LocalNode, name: string, fromNow = false): () => string {
  const read = () => {
    try {
      return readFileSync(path.join(node.dir, 'logs', `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  };
  const from = fromNow ? read().length : 0;
  return () => read().slice(from);
}

/** The buildkitd of each node, started once (startBuildkitd), forgotten when stopped. */
const running = new WeakMap<LocalNode, Promise<Buildkitd>>();

/**
 * Runs buildkitd inside the node's namespaces (containerd worker, namespace k8s.io), with the way out to the
 * npm registry its builds need; resolves once buildctl sees its worker. A node's running buildkitd is reused.
 */
export async function startBuildkitd(node: LocalNode, log: (line: string) => void = console.log): Promise<Buildkitd> {
  const pending = running.get(node);
  const current = await pending?.catch(() => undefined);
  if (current?.daemon.running()) return current;
  if (running.get(node) !== pending) return startBuildkitd(node, log); // another caller got there first
  await current?.stop();
  const starting = launchBuildkitd(node, log);
  running.set(node, starting);
  starting.catch(() => running.delete(node));
  return starting;
}

async function launchBuildkitd(node: LocalNode, log: (line: string) => void): Promise<Buildkitd> {
  const started = Date.now();
  const binaries = ensureBuildkit(log);
  const tmp = path.join(node.dir, 'buildkit-tmp'); // not the host's /tmp: the node's mount namespace shares it
  mkdirSync(tmp, { recursive: true });
  const config = path.join(node.dir, 'buildkitd.toml');
  writeFileSync(config, buildkitdConfig({ cgroupParent: node.cgroupRoot }));

  // The way out: the egress proxy on the host side, its unix socket relayed onto the node's loopback. The proxy is
  // one node process (tsx's require hook, not its CLI, which would run the script in a child without pdeathsig).
  const socket = path.join(node.dir, 'egress.sock');
  // Each daemon's readiness is read from what its log gains from now on (a node's logs outlive a restart).
  const proxyLog = logged(node, 'egress-proxy', true);
  const proxy = node.daemon('egress-proxy', process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'egress-proxy-process.ts'), socket, ...allowedEgressHosts()], { hostSide: true });
  await waitReady(proxy, async () => existsSync(socket) && proxyLog().includes('listening'), { what: 'the egress proxy', timeoutMs: 30_000, everyMs: 100 });
  const relayLog = logged(node, 'egress-relay', true);
  const relay = node.daemon('egress-relay', process.execPath, ['-e', RELAY_TO_UNIX, '127.0.0.1', String(EGRESS_PORT), socket]);
  await waitReady(relay, async () => relayLog().includes('listening'), { what: `the egress relay on the node's 127.0.0.1:${EGRESS_PORT}`, timeoutMs: 15_000, everyMs: 100 });

  const daemon = node.daemon('buildkitd', 'env', [`TMPDIR=${tmp}`, binaries.buildkitd, '--config', config, '--addr', BUILDKITD_ADDRESS]);
  await waitReady(
    daemon,
    async () => {
      const workers = await node.exec(binaries.buildctl, ['--addr', BUILDKITD_ADDRESS, 'debug', 'workers']).catch(() => '');
      return workers.includes('linux/') ? workers : undefined; // a line per worker: ID, PLATFORMS
    },
    { what: 'buildkitd (its containerd worker)', timeoutMs: 60_000, everyMs: 250 },
  );
  const version = (await node.exec(binaries.buildkitd, ['--version'])).trim();
  log(`${version} up in the node, containerd worker on ${CONTAINERD_SOCKET} (k8s.io) (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return {
    binaries,
    version,
    daemon,
    async stop() {
      running.delete(node);
      await daemon.stop(10_000);
      await relay.stop(5_000);
      await proxy.stop(5_000);
    },
  };
}

export interface BuildOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface BuildctlBuildOptions {
  /** The build context, holding the Dockerfile (minikube's <dir>: context and dockerfile both); a path the node sees. */
  dir: string;
  /** The tag as minikube's machine.BuildImage hands it on (normalized: docker.io/library/…); "" builds without a name. */
  reference: string;
  /**
   * minikube's `--build-opt` values, each passed as "--"+opt: e.g. `opt=build-arg:NODE_IMAGE=…` becomes
   * `--opt=build-arg:NODE_IMAGE=…`, `no-cache` becomes `--no-cache`. See standInBuildOpts for the stand-in's.
   */
  opts?: string[];
  /** minikube's `--build-env` values (KEY=VALUE), added to buildctl's environment. */
  env?: string[];
  /** Where buildctl's output goes as it comes (minikube: its own stdout and stderr). */
  out?: BuildOutput;
  /** minikube's `push` (`image build --push`): `,push=true` on the output. */
  push?: boolean;
}

export class BuildctlError extends Error {
  constructor(
    message: string,
    readonly code: number | string,
    /** Everything buildctl wrote on stderr (its progress and its error). */
    readonly output: string,
  ) {
    super(message);
    this.name = 'BuildctlError';
  }
}

/** containerd.go's BuildImage argv, after `sudo` (see the file's comment). */
export function buildctlArgs(dir: string, reference: string, opts: string[] = [], push = false): string[] {
  let extra = '';
  if (reference !== '') {
    let tag = reference;
    if (!tag.includes(':')) tag += ':latest'; // minikube's own test: any ":" counts, a registry port included
    extra = `,name=${tag}`;
    if (push) extra += ',push=true';
  }
  return ['build', '--frontend', 'dockerfile.v0', '--local', `context=${dir}`, '--local', `dockerfile=${dir}`, '--output', `type=image${extra}`, ...opts.map((opt) => `--${opt}`)];
}

/**
 * The stand-in's `--build-opt` values (the service Dockerfile's base and the way out; see the file's comment):
 * the base image from the node's own store, and the egress proxy for RUN steps.
 */
export function standInBuildOpts(baseImage: string): string[] {
  const proxy = `http://127.0.0.1:${EGRESS_PORT}`;
  return ['opt=image-resolve-mode=local', `opt=build-arg:NODE_IMAGE=${baseImage}`, `opt=build-arg:HTTPS_PROXY=${proxy}`, `opt=build-arg:https_proxy=${proxy}`];
}

/**
 * Runs minikube's `buildctl build` inside the node against its buildkitd (start it first: startBuildkitd),
 * streaming buildctl's output to `out`. Rejects with buildctl's own error text (its `error: …` lines, e.g.
 * `error: failed to solve: process "/bin/sh -c …" did not complete successfully: exit code: 1`).
 */
export async function buildctlBuild(node: LocalNode, options: BuildctlBuildOptions): Promise<void> {
  const { buildctl } = ensureBuildkit(() => undefined);
  const args = buildctlArgs(path.resolve(options.dir), options.reference, options.opts, options.push);
  const [command, commandArgs] = node.command(buildctl, args);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: path.join(node.dir, 'buildkit-tmp') };
  for (const pair of options.env ?? []) {
    const equals = pair.indexOf('=');
    if (equals > 0) env[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => options.out?.stdout(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      options.out?.stderr(chunk.toString());
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      // buildctl ends a failed build with its error: "error: failed to solve: …" (possibly more lines after it).
      const lines = stderr.trimEnd().split('\n');
      const at = lines.findLastIndex((line) => /^error: /.test(line));
      const text = at >= 0 ? lines.slice(at).join('\n') : lines.slice(-20).join('\n');
      reject(new BuildctlError(text || `buildctl build exited with ${code ?? signal}`, code ?? signal ?? 'unknown', stderr));
    });
  });
}

/** `ctr -n k8s.io images ls -q` contains `reference` (what the kubelet will find). */
export async function hasImage(node: LocalNode, reference: string): Promise<boolean> {
  return (await node.ctr(['images', 'ls', '-q'])).split('\n').includes(reference);
}
