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
 * - diff: a new tag, profile or cluster (minikube delete + start) rebuilds, and so does an image the
 *   node no longer has (a node whose images were pruned, or a restarted VM without a disk);
 * - delete: removes the tag from the node, so replaced images do not pile up.
 */
import * as pulumi from '@pulumi/pulumi';

export interface MinikubeImageInputs {
  /** The minikube profile whose node builds and runs the image. */
  profile: string;
  /** Exact reference, e.g. `data-service:<content hash>`. */
  imageName: string;
  /** The build context (holding the Dockerfile). */
  contextDir: string;
  /** Identity of the cluster (its kube-system namespace's uid): a new cluster gets a new build. */
  clusterId: string;
}

export interface MinikubeImageOutputs extends MinikubeImageInputs {
  /** The node's container runtime when the image was built (docker, containerd, cri-o). */
  runtime: string;
}

/** Container runtimes `minikube image build` supports. */
export const BUILDABLE_RUNTIMES = ['docker', 'containerd', 'cri-o', 'crio'];

/**
 * Calls to the minikube CLI. Every function is self-contained (requires inside), because Pulumi
 * serializes the provider's code into the dynamic provider's own process.
 */
export const minikubeCli = {
  run(args: string[], timeoutMs = 60_000): string {
    // Required here, not imported at the top: the serialized provider then carries no captured module object.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    // A Docker endpoint left in the shell by an old `eval $(minikube docker-env)` (maybe of another
    // profile, maybe of a port that no longer exists) must not steer minikube: it finds its node itself.
    // Your own DOCKER_HOST (rootless Docker, colima) stays: minikube's docker driver needs it.
    const env = { ...process.env };
    if (env.MINIKUBE_ACTIVE_DOCKERD || (env.DOCKER_CERT_PATH ?? '').includes('/.minikube/')) {
      for (const name of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'MINIKUBE_ACTIVE_DOCKERD']) delete env[name];
    }
    if (env.MINIKUBE_ACTIVE_PODMAN) for (const name of ['CONTAINER_HOST', 'CONTAINER_SSHKEY', 'MINIKUBE_ACTIVE_PODMAN']) delete env[name];
    return execFileSync('minikube', args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  },

  /** The profile's state, or why it cannot build: `{ runtime }` or `{ problem }` naming the fix. */
  profile(profile: string): { runtime: string } | { problem: string } {
    let listing: string;
    try {
      listing = minikubeCli.run(['profile', 'list', '-o', 'json']);
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
    if (found.Status !== undefined && found.Status !== 'Running' && found.Status !== 'OK') {
      return { problem: `minikube profile "${profile}" is ${found.Status}: run \`minikube start -p ${profile}\`` };
    }
    const runtime = found.Config?.KubernetesConfig?.ContainerRuntime || 'docker';
    if (!BUILDABLE_RUNTIMES.includes(runtime)) {
      return { problem: `minikube cannot build images for container runtime "${runtime}": recreate the profile with \`minikube delete -p ${profile} && minikube start -p ${profile} --container-runtime=containerd\`, or use imageMode registry` };
    }
    return { runtime };
  },

  /** True when the node has `imageName` (as given, or normalised with docker.io/library/). */
  has(profile: string, imageName: string): boolean {
    const listing = minikubeCli.run(['-p', profile, 'image', 'ls', '--format', 'short']);
    const wanted = [imageName, `docker.io/library/${imageName}`, `localhost/${imageName}`];
    return listing.split('\n').some((line) => wanted.includes(line.trim()));
  },

  build(inputs: MinikubeImageInputs): void {
    // --all: every node of a multi-node profile gets the image, wherever the pod lands.
    minikubeCli.run(['-p', inputs.profile, 'image', 'build', '--all', '-t', inputs.imageName, inputs.contextDir], 30 * 60_000);
  },

  remove(profile: string, imageName: string): void {
    minikubeCli.run(['-p', profile, 'image', 'rm', imageName]);
  },
};

const KEYS: Array<keyof MinikubeImageInputs> = ['profile', 'imageName', 'clusterId'];

export const minikubeImageProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: MinikubeImageInputs, news: MinikubeImageInputs) {
    const state = minikubeCli.profile(news.profile);
    if ('problem' in state) return { inputs: news, failures: [{ property: 'profile', reason: state.problem }] };
    return { inputs: news };
  },

  async diff(_id: string, olds: MinikubeImageOutputs, news: MinikubeImageInputs) {
    const replaces: string[] = KEYS.filter((key) => olds[key] !== news[key]);
    if (replaces.length === 0) {
      let present = false;
      try {
        present = minikubeCli.has(news.profile, news.imageName);
      } catch {
        present = false; // cannot tell: build again rather than roll out an image that may be missing
      }
      if (!present) replaces.push('imageName');
    }
    // A moved checkout (another contextDir) alone is an update: the image is the same.
    return { changes: replaces.length > 0 || olds.contextDir !== news.contextDir, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: MinikubeImageInputs) {
    const state = minikubeCli.profile(inputs.profile);
    if ('problem' in state) throw new Error(state.problem);
    try {
      minikubeCli.build(inputs);
    } catch (error) {
      const failure = error as { stderr?: string; stdout?: string; message: string };
      const output = `${failure.stdout ?? ''}\n${failure.stderr ?? ''}`.trim().split('\n').slice(-40).join('\n');
      throw new Error(`minikube image build of ${inputs.imageName} failed: ${failure.message.split('\n')[0]}\n${output}`);
    }
    const outs: MinikubeImageOutputs = { ...inputs, runtime: state.runtime };
    return { id: `${inputs.profile}/${inputs.imageName}`, outs };
  },

  async update(_id: string, olds: MinikubeImageOutputs, news: MinikubeImageInputs) {
    // Only contextDir can change without a replacement; the image itself is the same.
    return { outs: { ...news, runtime: olds.runtime } };
  },

  async read(id: string, props: MinikubeImageOutputs) {
    // `pulumi refresh`: an image the node lost is gone from the state too, so the next `up` builds it.
    try {
      if (!minikubeCli.has(props.profile, props.imageName)) return {};
    } catch {
      // node unreachable: keep what the state says
    }
    return { id, props };
  },

  async delete(_id: string, props: MinikubeImageOutputs) {
    // Best effort: the node may be gone (minikube delete) or a terminating pod may still use the image.
    try {
      minikubeCli.remove(props.profile, props.imageName);
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
