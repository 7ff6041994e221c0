/**
 * The service image built inside a Minikube node, whatever its container runtime.
 *
 * `minikube image build` builds where the kubelet looks for images: with Docker in the node's dockerd,
 * with containerd through the node's BuildKit, with CRI-O through podman. So no Docker endpoint is
 * ever recorded (a stale `eval $(minikube docker-env)` or a restarted profile cannot break `up` or
 * `destroy`), the image is built for the node's own architecture, and nothing is pushed anywhere.
 *
 * A dynamic resource, so that its lifecycle follows the node rather than this program's inputs only:
 * - check (runs at preview, before any change): the profile must be running, with a runtime minikube
 *   can build for; otherwise the error names the exact fix;
 * - a new tag or profile is a new image (create, then delete the old one: replaced images do not pile
 *   up); a node without the image (a new cluster after minikube delete + start, an image pruned, a VM
 *   restarted without its disk) REBUILDS THE SAME TAG IN PLACE (update): the diff asks the node itself,
 *   so the image needs nothing from the cluster's API and its build starts as soon as the program does.
 *   A replacement there would delete the old resource last, and its `image rm` would remove the very
 *   tag just rebuilt: the running pods go on, every new pod fails to pull, and every later `up`
 *   rebuilds and deletes again.
 * - a build is believed only when the node then has the image: `minikube image build` exits 0 when
 *   the build fails (machine.BuildImage logs the failure and returns nil; kubernetes/minikube#16576).
 */
import * as pulumi from '@pulumi/pulumi';

export interface MinikubeImageInputs {
  /** The minikube profile whose node builds and runs the image. */
  profile: string;
  /** Exact reference, e.g. `data-service:<content hash>`. */
  imageName: string;
  /** The build context (holding the Dockerfile). */
  contextDir: string;
}

export interface MinikubeImageOutputs extends MinikubeImageInputs {
  /** The node's container runtime when the image was built (docker, containerd, cri-o). */
  runtime: string;
}

/**
 * `minikube profile list` statuses of a profile that serves: one node's API server (Running; OK in
 * older releases), an HA profile's (HAppy, or Degraded: a control plane down, the cluster up),
 * from pkg/minikube/cluster/status.go.
 */
const SERVING_STATUSES = ['Running', 'OK', 'HAppy', 'Degraded'];

/** Container runtimes `minikube image build` supports. */
const BUILDABLE_RUNTIMES = ['docker', 'containerd', 'cri-o', 'crio'];

/*
 * Calls to the minikube CLI. Plain function declarations, each self-contained (requires inside), because
 * Pulumi serializes the provider's code into the dynamic provider's own process: a function captures
 * the functions it calls, whereas methods of an exported object were captured as `exports.minikubeCli`
 * with only some of their properties ("exports.minikubeCli.run is not a function" under ts-node).
 */

/** The environment minikube runs with. */
function minikubeEnv(): NodeJS.ProcessEnv {
  // A Docker endpoint left in the shell by an old `eval $(minikube docker-env)` (maybe of another
  // profile, maybe of a port that no longer exists) must not steer minikube: it finds its node itself.
  // Your own DOCKER_HOST (rootless Docker, colima) stays: minikube's docker driver needs it.
  const env = { ...process.env };
  if (env.MINIKUBE_ACTIVE_DOCKERD || (env.DOCKER_CERT_PATH ?? '').includes('/.minikube/')) {
    for (const name of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'MINIKUBE_ACTIVE_DOCKERD']) delete env[name];
  }
  if (env.MINIKUBE_ACTIVE_PODMAN) for (const name of ['CONTAINER_HOST', 'CONTAINER_SSHKEY', 'MINIKUBE_ACTIVE_PODMAN']) delete env[name];
  return env;
}

function run(args: string[], timeoutMs = 60_000): string {
  // Required here, not imported at the top: the serialized provider then carries no captured module object.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  return execFileSync('minikube', args, { encoding: 'utf8', env: minikubeEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

/**
 * The profile's state, or why it cannot build: `{ runtime }` or `{ problem }` naming the fix.
 * `light`: without asking the node whether it runs (`--light`; status "Skipped"), which takes minikube
 * a second or more per profile (it inspects each machine and its API server): for create and update,
 * moments after check asked in full.
 */
function profileState(profile: string, light = false): { runtime: string } | { problem: string } {
  let listing: string;
  try {
    listing = run(['profile', 'list', '-o', 'json', ...(light ? ['--light'] : [])]);
  } catch (error) {
    const reason = (error as { code?: string }).code === 'ENOENT' ? 'minikube is not installed (https://minikube.sigs.k8s.io/docs/start/)' : String((error as Error).message).split('\n')[0];
    return { problem: `cannot ask minikube about profile "${profile}": ${reason}. imageMode minikube needs it; or use imageMode registry or prebuilt` };
  }
  type Profile = { Name: string; Status?: string; Config?: { KubernetesConfig?: { ContainerRuntime?: string } } };
  let parsed: { valid?: Profile[]; invalid?: Profile[] };
  try {
    parsed = JSON.parse(listing.slice(listing.indexOf('{')));
  } catch {
    return { problem: `\`minikube profile list -o json\` printed something unexpected: ${listing.slice(0, 200)}` };
  }
  const found = (parsed.valid ?? []).find((p) => p.Name === profile);
  if (!found) {
    const known = (parsed.valid ?? []).map((p) => p.Name);
    return { problem: `minikube profile "${profile}" does not exist${known.length ? ` (profiles: ${known.join(', ')})` : ''}: run \`minikube start -p ${profile}\`, or set \`pulumi config set minikubeProfile <profile>\`` };
  }
  if (!light && found.Status !== undefined && !SERVING_STATUSES.includes(found.Status)) {
    return { problem: `minikube profile "${profile}" is ${found.Status}: run \`minikube start -p ${profile}\`` };
  }
  const runtime = found.Config?.KubernetesConfig?.ContainerRuntime || 'docker';
  if (!BUILDABLE_RUNTIMES.includes(runtime)) {
    return { problem: `minikube cannot build images for container runtime "${runtime}": recreate the profile with \`minikube delete -p ${profile} && minikube start -p ${profile} --container-runtime=containerd\`, or use imageMode registry` };
  }
  return { runtime };
}

/**
 * The names a node may list `imageName` under: as given, normalised as minikube normalises a build's
 * tag (`dockerref.ParseNormalizedNamed` in pkg/minikube/machine/build_images.go: `x:t` is
 * `docker.io/library/x:t`, `me/x:t` is `docker.io/me/x:t`, a registry host is kept), and with the
 * `localhost/` prefix that podman (CRI-O) gives an unqualified name.
 */
function nodeNames(imageName: string): string[] {
  const slash = imageName.indexOf('/');
  const first = slash < 0 ? '' : imageName.slice(0, slash);
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const normalised = hasRegistry ? imageName : slash < 0 ? `docker.io/library/${imageName}` : `docker.io/${imageName}`;
  return [...new Set([imageName, normalised, `localhost/${imageName}`])];
}

/**
 * Whether the node has `imageName`: true, false, or undefined when no running node can say.
 * `minikube image ls` asks only Running nodes (ListImages in pkg/minikube/machine/cache_images.go) and
 * prints nothing, exit 0, for a stopped profile: an empty listing means "gone" only when the profile runs.
 */
function has(profile: string, imageName: string): boolean | undefined {
  if (listed(profile, imageName)) return true;
  return 'problem' in profileState(profile) ? undefined : false;
}

/** Whether `minikube image ls` names the image (from a stopped profile it names nothing). */
function listed(profile: string, imageName: string): boolean {
  const wanted = nodeNames(imageName);
  return run(['-p', profile, 'image', 'ls', '--format', 'short']).split('\n').some((line) => wanted.includes(line.trim()));
}

/** Builds on every node; returns what minikube and the builder printed (stdout and stderr). */
function build(inputs: MinikubeImageInputs): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  // --all: every node of a multi-node profile gets the image, wherever the pod lands.
  // -f: minikube packs the directory itself (CreateTarStream in third_party/go-dockerclient/tar.go) and,
  // unlike the docker CLI, sends the Dockerfile only when .dockerignore lets it through or -f names it.
  const args = ['-p', inputs.profile, 'image', 'build', '--all', '-f', 'Dockerfile', '-t', inputs.imageName, inputs.contextDir];
  const result = spawnSync('minikube', args, { encoding: 'utf8', env: minikubeEnv(), timeout: 30 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.trim();
  if (result.error || result.status !== 0) {
    throw Object.assign(new Error(`minikube ${args.join(' ')} exited ${result.status ?? result.error?.message}`), { output });
  }
  return output;
}

/**
 * Builds, and believes it only when the node then has the image (see the header): otherwise fails
 * with the builder's last lines, which name the cause (a failing RUN, a compile error).
 */
function buildAndVerify(inputs: MinikubeImageInputs): void {
  let output: string;
  try {
    output = build(inputs);
  } catch (error) {
    throw buildFailure(inputs, (error as Error).message, (error as { output?: string }).output ?? '');
  }
  if (has(inputs.profile, inputs.imageName) !== true) {
    throw buildFailure(inputs, 'minikube exited 0, but the node has no such image (minikube reports a failed build only in its output)', output);
  }
}

/**
 * Removes the tag, unless the image also goes by another tag: the CRI's RemoveImage (containerd,
 * cri-o) removes an image with every reference to it, and a content-identical rebuild under a new tag
 * is the same image.
 */
function remove(profile: string, imageName: string): 'removed' | 'kept' | 'refused' {
  const wanted = nodeNames(imageName);
  // `image ls --format json`: minikube's []cruntime.ListImage, one entry per image with all its tags.
  const images = JSON.parse(run(['-p', profile, 'image', 'ls', '--format', 'json']) || '[]') as Array<{ repoTags?: string[] }>;
  const tags = images.map((image) => image.repoTags ?? []).find((refs) => refs.some((ref) => wanted.includes(ref)));
  if (!tags) return 'removed';
  if (tags.some((ref) => !wanted.includes(ref))) return 'kept';
  run(['-p', profile, 'image', 'rm', imageName]);
  // minikube only warns when the runtime refuses (RemoveImages in cache_images.go), and exits 0.
  return listed(profile, imageName) ? 'refused' : 'removed';
}

/**
 * How long delete retries an image that the docker runtime refuses to remove: `docker rmi` will not
 * remove the last tag of an image that a container still uses, and a replaced pod drains for up to
 * its grace period (preStop + drain + 5 s) after the rollout that made this image the old one.
 * containerd and CRI-O remove an image whatever uses it: nothing to wait for there.
 */
const DOCKER_REMOVE_PATIENCE_MS = 60_000;

function buildFailure(inputs: MinikubeImageInputs, reason: string, output: string): Error {
  const tail = output.split('\n').slice(-40).join('\n');
  return new Error(`minikube image build of ${inputs.imageName} failed: ${reason}\n${tail}`);
}

/** A new tag or profile is another image: a replacement (create the new one, then delete the old). */
const REPLACE_KEYS: Array<keyof MinikubeImageInputs> = ['profile', 'imageName'];

/**
 * The node lacks the image: it must be built again. A stopped profile says nothing either way (and
 * check has already named its fix); minikube failing to answer does: build again rather than roll
 * out an image that may be missing.
 */
function missing(inputs: MinikubeImageInputs): boolean {
  try {
    return has(inputs.profile, inputs.imageName) === false;
  } catch {
    return true;
  }
}

export const minikubeImageProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: MinikubeImageInputs, news: MinikubeImageInputs) {
    const state = profileState(news.profile);
    if ('problem' in state) return { inputs: news, failures: [{ property: 'profile', reason: state.problem }] };
    return { inputs: news };
  },

  async diff(_id: string, olds: MinikubeImageOutputs, news: MinikubeImageInputs) {
    const replaces = REPLACE_KEYS.filter((key) => olds[key] !== news[key]);
    if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: false };
    // Same tag: a node without the image (a new cluster too) is rebuilt in place (see the header);
    // a moved checkout (another contextDir) alone is an update that builds nothing.
    const changes = olds.contextDir !== news.contextDir || missing(news);
    return { changes, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: MinikubeImageInputs) {
    const state = profileState(inputs.profile, true);
    if ('problem' in state) throw new Error(state.problem);
    buildAndVerify(inputs);
    const outs: MinikubeImageOutputs = { ...inputs, runtime: state.runtime };
    return { id: `${inputs.profile}/${inputs.imageName}`, outs };
  },

  async update(_id: string, olds: MinikubeImageOutputs, news: MinikubeImageInputs) {
    let runtime = olds.runtime;
    if (missing(news)) {
      const state = profileState(news.profile, true);
      if ('problem' in state) throw new Error(state.problem);
      buildAndVerify(news);
      runtime = state.runtime;
    }
    return { outs: { ...news, runtime } };
  },

  async read(id: string, props: MinikubeImageOutputs) {
    // `pulumi refresh`: an image a running node lost is gone from the state too, so the next `up`
    // builds it; a stopped profile's empty listing says nothing.
    try {
      if (has(props.profile, props.imageName) === false) return {};
    } catch {
      // node unreachable: keep what the state says
    }
    return { id, props };
  },

  async delete(_id: string, props: MinikubeImageOutputs) {
    // Best effort: the node may be gone (minikube delete) or a terminating pod may still use the image.
    try {
      const deadline = Date.now() + (props.runtime === 'docker' ? DOCKER_REMOVE_PATIENCE_MS : 0);
      while (remove(props.profile, props.imageName) === 'refused' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2000));
    } catch {
      // nothing to clean, or cleaned by the node's own garbage collection later
    }
  },
};

export class MinikubeImage extends pulumi.dynamic.Resource {
  declare readonly imageName: pulumi.Output<string>;
  declare readonly runtime: pulumi.Output<string>;

  constructor(name: string, args: { [K in keyof MinikubeImageInputs]: pulumi.Input<MinikubeImageInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
    super(minikubeImageProvider, name, { ...args, runtime: undefined }, opts);
  }
}
