/**
 * `minikube image build | ls | rm` of the STAND-IN, on the real node's containerd (k8s.io namespace,
 * where the kubelet finds images), with minikube's behaviour as its source (HEAD, v1.38.x) shows it,
 * quirks included. Builds run in devkit/images' dockerd (Debian's, in namespaces of its own), since the
 * node has no BuildKit; the result is imported into the node (transfer.ts) as `buildctl --output
 * type=image` would leave it there.
 */
import { ensureBaseImage } from '../images';
import { PROXY_BUILD_ARGS, startDockerd, type Dockerd } from '../images/dockerd';
import type { LocalNode } from '../node/node';
import { transferImage } from './transfer';

/**
 * A reference as minikube passes it on: `dockerref.ParseNormalizedNamed(tag).String()` in
 * pkg/minikube/machine/build_images.go (BuildImage), so `data-service:abc` is built as
 * `docker.io/library/data-service:abc`; and the containerd runtime adds `:latest` to a tag without one
 * (pkg/minikube/cruntime/containerd.go, BuildImage).
 */
export function normalizeReference(reference: string): string {
  const slash = reference.indexOf('/');
  const first = slash < 0 ? '' : reference.slice(0, slash);
  let named = reference;
  if (slash < 0) named = `docker.io/library/${reference}`;
  else if (!(first.includes('.') || first.includes(':') || first === 'localhost')) named = `docker.io/${reference}`;
  const lastPart = named.slice(named.lastIndexOf('/') + 1);
  return lastPart.includes(':') || lastPart.includes('@') ? named : `${named}:latest`;
}

const isTag = (ref: string) => !ref.includes('@') && !ref.startsWith('sha256:');

export interface BuildRecord {
  reference: string;
  ok: boolean;
  seconds: number;
  /** Of those, the builder's own `docker build`: what minikube's `image build` runs in the node too. */
  buildSeconds?: number;
  /** Of those, the stand-in's own step: the image moved into the node (transfer.ts; minikube builds in place). */
  transferSeconds?: number;
}

export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The node's images, and a builder kept running between builds (its layer cache makes rebuilds quick). */
export class NodeImages {
  readonly builds: BuildRecord[] = [];
  private builder?: Promise<Dockerd>;
  /** The last image built per repository: kept in the builder so that its layers serve the next build. */
  private readonly lastBuilt = new Map<string, string>();

  constructor(private readonly log: (line: string) => void) {}

  /** `ctr images ls`: every reference (tags, digests) with the manifest digest it points at. */
  private async references(node: LocalNode): Promise<Array<{ ref: string; digest: string }>> {
    const lines = (await node.ctr(['images', 'ls'])).trim().split('\n').slice(1);
    return lines.filter(Boolean).map((line) => {
      const [ref, , digest] = line.split(/\s+/);
      return { ref, digest };
    });
  }

  /**
   * `minikube image ls --format short`: the RepoTags of `crictl images` (listCRIImages in
   * pkg/minikube/cruntime/cri.go), sorted in reverse (ListImages in pkg/minikube/machine/cache_images.go).
   * CRI lists tags only: no digest references, no bare image ids.
   */
  async list(node: LocalNode): Promise<string[]> {
    const tags = (await this.references(node)).map((entry) => entry.ref).filter(isTag);
    return [...new Set(tags)].sort((a, b) => b.localeCompare(a));
  }

  /** `minikube image ls --format json`: one entry per image (cruntime.ListImage), all its tags together. */
  async listJson(node: LocalNode): Promise<Array<{ id: string; repoDigests: string[]; repoTags: string[]; size: string }>> {
    const byDigest = new Map<string, string[]>();
    for (const { ref, digest } of await this.references(node)) byDigest.set(digest, [...(byDigest.get(digest) ?? []), ref]);
    return [...byDigest].map(([digest, refs]) => ({ id: digest, repoDigests: refs.filter((ref) => ref.includes('@')), repoTags: refs.filter(isTag), size: '0' }));
  }

  /**
   * `minikube image rm NAME`: `crictl rmi NAME`, then with docker.io/ and localhost/ prefixes
   * (removeCRIImage in pkg/minikube/cruntime/cri.go). CRI's RemoveImage (containerd 1.6,
   * pkg/cri/server/image_remove.go) removes the whole image, every reference to it, and does not ask
   * whether a container uses it: running containers go on, new ones cannot start from it.
   */
  async remove(node: LocalNode, name: string): Promise<boolean> {
    const all = await this.references(node);
    const candidates = [name, normalizeReference(name), `localhost/${name}`];
    const found = all.find((entry) => candidates.includes(entry.ref));
    if (!found) return false;
    const doomed = all.filter((entry) => entry.digest === found.digest).map((entry) => entry.ref);
    await node.ctr(['images', 'rm', ...doomed]);
    return true;
  }

  /**
   * `minikube image build -t TAG DIR`. As minikube does, a failed build is reported on stderr (the
   * builder's own output goes to the terminal: cruntime's BuildImage sets c.Stdout/c.Stderr to
   * os.Stdout/os.Stderr) and the command still EXITS 0: machine.BuildImage logs the failure per node
   * (klog.Warningf "Failed to build image for profile …") and returns nil (kubernetes/minikube#16576).
   * Returns whether it built, for the stand-in's own record.
   *
   * Unlike minikube: the Dockerfile's NODE_IMAGE build argument is set to the base image made here
   * (no Docker Hub), and the build's npm traffic goes through devkit/images' egress proxy.
   */
  async build(node: LocalNode, profile: string, tag: string, contextDir: string, out: Output): Promise<boolean> {
    const reference = normalizeReference(tag);
    const started = Date.now();
    const daemon = await (this.builder ??= startDockerd(this.log));
    const base = (await ensureBaseImage({ daemon, log: this.log })).ref;
    let ok = true;
    let buildSeconds: number | undefined;
    let transferSeconds: number | undefined;
    try {
      const building = Date.now();
      await daemon.docker(
        ['build', '--force-rm', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, ...PROXY_BUILD_ARGS.flatMap((arg) => ['--build-arg', arg]), '--tag', reference, contextDir],
        { log: (line) => out.stdout(`${line}\n`) },
      );
      buildSeconds = (Date.now() - building) / 1000;
      const transferring = Date.now();
      // ctr records the image before it unpacks it: a failed move must not leave a tag that `image ls`
      // shows (the provider would believe the build) while no container can start from it.
      const moved = await transferImage(daemon, node, reference).catch(async (error: Error) => {
        await node.ctr(['images', 'rm', reference]).catch(() => undefined);
        throw error;
      });
      this.log(`stand-in: ${reference} into the node, ${moved.sent} of ${moved.layers} layers sent (the rest it had)`);
      transferSeconds = (Date.now() - transferring) / 1000;
      const repository = reference.slice(0, reference.lastIndexOf(':'));
      const previous = this.lastBuilt.get(repository);
      if (previous && previous !== reference) await daemon.docker(['rmi', previous]).catch(() => undefined);
      this.lastBuilt.set(repository, reference);
    } catch (error) {
      ok = false;
      out.stderr(`${(error as Error).message}\n`);
      out.stderr(`W1202 minikube-standin build_images.go] Failed to build image for profile ${profile}. make sure the profile is running. ${(error as Error).message.split('\n')[0]}\n`);
    }
    this.builds.push({ reference, ok, seconds: (Date.now() - started) / 1000, buildSeconds, transferSeconds });
    return ok;
  }

  async stop(): Promise<void> {
    const builder = this.builder;
    this.builder = undefined;
    if (builder) await (await builder).stop();
  }
}
