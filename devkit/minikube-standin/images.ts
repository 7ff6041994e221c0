/**
 * `minikube image build | ls | rm` of the STAND-IN, on the real node, following minikube's own steps
 * (kubernetes/minikube at eb25dbc, v1.36–v1.38 alike), quirks included:
 *
 *   build: the directory packed on the host as minikube packs it (pack.ts: CreateTarStream on
 *          minikube's own libraries, `.dockerignore` applied), the tar copied into the node under
 *          /var/lib/minikube/build and unpacked there, the runtime's build run IN THE NODE on that
 *          directory (pkg/minikube/machine/build_images.go transferAndBuildImage), the temporary
 *          files removed only after a successful build, and the command exiting 0 whatever happened.
 *   ls:    nothing from a profile that is not Running (pkg/minikube/machine/cache_images.go
 *          ListImages skips such nodes), exit 0.
 *   rm:    a failure per node is a warning and the command exits 0 (cache_images.go RemoveImages).
 *
 * The build itself (`runtimeBuild`): with the containerd runtime, `buildctl build` against BuildKit
 * v0.32.2 in the node (buildkit.ts), as minikube runs it; the image lands in containerd's k8s.io
 * namespace with no further step. With the docker runtime, `docker build` of the unpacked directory
 * run in the node (pkg/minikube/cruntime/docker.go BuildImage), against Debian's dockerd of
 * devkit/images; there is no cri-dockerd to be had here, so the kubelet runs on containerd and the
 * image is then moved into it (transfer.ts), a step real Minikube does not take.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ensureBaseImage } from '../images';
import { DOCKER_CLI, PROXY_BUILD_ARGS, dockerCliEnv, startDockerd, type Dockerd } from '../images/dockerd';
import type { LocalNode } from '../node/node';
import { buildctlBuild, standInBuildOpts, startBuildkitd } from './buildkit';
import { packContext } from './pack';
import { transferImage } from './transfer';

/** Where minikube unpacks build contexts in the node: vmpath.GuestPersistentDir + "/build" (build_images.go buildRoot). */
export const BUILD_ROOT = '/var/lib/minikube/build';

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
  /** The profile's container runtime, which chose the build path. */
  runtime: string;
  ok: boolean;
  seconds: number;
  /** Of those, the runtime's build in the node (`docker build` or `buildctl build`), as minikube runs it. */
  buildSeconds?: number;
  /** Of those, the stand-in's own step: a docker-built image moved into containerd (transfer.ts; minikube has no such step). */
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
  /** Nodes holding the base image already (BuildKit reads it from the node's store: buildkit.ts). */
  private readonly baseImported = new WeakSet<LocalNode>();
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
   * `minikube image rm NAME` on one node, by the profile's runtime; resolves to the failure minikube
   * would warn about (RemoveImages in cache_images.go warns per node and exits 0), or undefined.
   * - containerd: `crictl rmi NAME`, then with docker.io/ and localhost/ prefixes (removeCRIImage in
   *   pkg/minikube/cruntime/cri.go). CRI's RemoveImage (containerd 1.6, pkg/cri/server/image_remove.go)
   *   removes the whole image, every reference to it, and does not ask whether a container uses it.
   * - docker: `docker rmi NAME` (cruntime/docker.go RemoveImage): a tag among others is only untagged;
   *   the last tag of an image that a container still uses, running or exited (a pod still draining
   *   after a rollout), is refused with the daemon's conflict error.
   */
  async remove(node: LocalNode, runtime: string, name: string): Promise<string | undefined> {
    const all = await this.references(node);
    const candidates = runtime === 'docker' ? [normalizeReference(name)] : [name, normalizeReference(name), `localhost/${name}`];
    const found = all.find((entry) => candidates.includes(entry.ref));
    if (!found) {
      return runtime === 'docker'
        ? `remove image docker: docker rmi ${name}: Error response from daemon: No such image: ${name}`
        : `crictl: sudo crictl rmi ${name}: ERRO[0000] no such image ${name}`;
    }
    const sameImage = all.filter((entry) => entry.digest === found.digest && isTag(entry.ref));
    if (runtime === 'docker') {
      if (sameImage.length > 1) {
        await node.ctr(['images', 'rm', found.ref]);
        return undefined;
      }
      // ctr containers ls: CONTAINER IMAGE RUNTIME. The kubelet keeps an exited container until its pod goes.
      const users = (await node.ctr(['containers', 'ls'])).trim().split('\n').slice(1).map((line) => line.split(/\s+/)).filter(([, image]) => image === found.ref);
      if (users.length > 0) {
        return `remove image docker: docker rmi ${name}: Error response from daemon: conflict: unable to remove repository reference "${name}" (must force) - container ${users[0][0].slice(0, 12)} is using its referenced image ${found.digest.slice(7, 19)}`;
      }
    }
    await node.ctr(['images', 'rm', ...all.filter((entry) => entry.digest === found.digest).map((entry) => entry.ref)]);
    return undefined;
  }

  /**
   * `minikube image build -t TAG [-f FILE] DIR` on one node. As minikube does, a failed build is
   * reported on stderr (the builder's own output goes to the terminal: cruntime's BuildImage sets
   * c.Stdout/c.Stderr to os.Stdout/os.Stderr) and the command still EXITS 0: machine.BuildImage logs
   * the failure per node (klog.Warningf "Failed to build image for profile …") and returns nil
   * (kubernetes/minikube#16576). Packing the directory is the exception: createTar's error is fatal
   * (exit.Error "Failed to save dir"), so it rejects. Returns whether it built, for the stand-in's record.
   *
   * Unlike minikube, the build gets build options of the stand-in's (passed as minikube passes
   * `--build-opt`): the Dockerfile's NODE_IMAGE build argument set to the base image made here (no
   * Docker Hub), and the build's npm traffic sent through devkit/images' egress proxy.
   */
  async build(node: LocalNode, profile: { name: string; runtime: string }, tag: string, contextDir: string, dockerFile: string | undefined, out: Output): Promise<boolean> {
    // BuildImage: `dockerref.ParseNormalizedNamed(tag).String()`.
    const reference = normalizeReference(tag);
    const started = Date.now();
    const packed = await packContext(contextDir, dockerFile, this.log);
    let ok = true;
    let buildSeconds: number | undefined;
    let transferSeconds: number | undefined;
    try {
      // transferAndBuildImage: copy the tar into the node, unpack it beside it, build from there.
      const filename = path.basename(packed.tar);
      const dst = `${BUILD_ROOT}/${filename}`;
      const context = `${BUILD_ROOT}/${filename.slice(0, -path.extname(filename).length)}`;
      await node.exec('mkdir', ['-p', BUILD_ROOT]);
      await node.exec('cp', [packed.tar, dst]);
      await node.exec('mkdir', ['-p', context]);
      await node.exec('tar', ['-C', context, '-xf', dst]);
      const file = dockerFile && !path.isAbsolute(dockerFile) ? `${context}/${dockerFile}` : dockerFile;
      const building = Date.now();
      try {
        await this.runtimeBuild(node, profile.runtime, context, file, reference, out);
      } catch (error) {
        throw new Error(`${profile.runtime} build ${dst}: ${(error as Error).message}`);
      }
      buildSeconds = (Date.now() - building) / 1000;
      await node.exec('rm', ['-rf', context]);
      await node.exec('rm', ['-f', dst]);
      if (profile.runtime === 'docker') {
        const transferring = Date.now();
        await this.intoContainerd(node, reference);
        transferSeconds = (Date.now() - transferring) / 1000;
      }
    } catch (error) {
      ok = false;
      const message = (error as Error).message;
      out.stderr(`${message}\n`);
      out.stderr(`W1202 minikube-standin build_images.go] Failed to build image for profile ${profile.name}. make sure the profile is running. ${message.split('\n')[0]}\n`);
    } finally {
      packed.remove(); // image.go removes its temporary tar once machine.BuildImage returns (always nil)
    }
    this.builds.push({ reference, runtime: profile.runtime, ok, seconds: (Date.now() - started) / 1000, buildSeconds, transferSeconds });
    return ok;
  }

  /**
   * cruntime's BuildImage for the profile's runtime, run in the node on the unpacked directory.
   * docker (cruntime/docker.go): `docker build [-f FILE] -t TAG DIR` then "--"+opt for each build option.
   * containerd (cruntime/containerd.go): FILE copied to DIR/Dockerfile when it is another file, then
   * buildctl against the node's buildkitd, whose containerd worker leaves the image in namespace k8s.io
   * where the kubelet looks (buildkit.ts); the base image is read from the node's own store.
   */
  private async runtimeBuild(node: LocalNode, runtime: string, dir: string, file: string | undefined, reference: string, out: Output): Promise<void> {
    if (runtime === 'containerd') {
      if (file && file !== `${dir}/Dockerfile`) await node.exec('cp', ['-f', file, `${dir}/Dockerfile`]);
      const base = await ensureBaseImage({ log: this.log });
      if (!this.baseImported.has(node)) {
        await node.importImage(base.archive);
        this.baseImported.add(node);
      }
      await startBuildkitd(node, this.log);
      await buildctlBuild(node, { dir, reference, opts: standInBuildOpts(base.ref), out });
      return;
    }
    const daemon = await this.daemon();
    const base = (await ensureBaseImage({ daemon, log: this.log })).ref;
    const opts = ['network=host', 'force-rm', `build-arg=NODE_IMAGE=${base}`, ...PROXY_BUILD_ARGS.map((arg) => `build-arg=${arg}`)];
    const args = ['build', ...(file ? ['-f', file] : []), '-t', reference, dir, ...opts.map((opt) => `--${opt}`)];
    const env = Object.entries(dockerCliEnv(daemon.runDir)).map(([name, value]) => `${name}=${value}`);
    if (runtime !== 'docker' && runtime !== 'containerd') throw new Error(`the stand-in builds for the docker and containerd runtimes only, not ${runtime}`);
    await streamInNode(node, 'env', [...env, DOCKER_CLI, ...args], out);
  }

  /**
   * The stand-in's own step: the kubelet here runs on containerd, so an image the docker runtime
   * built is moved into it (only the layers containerd lacks, transfer.ts); ctr records an image
   * before it unpacks it, so a failed move removes the tag lest `image ls` show an unusable image.
   */
  private async intoContainerd(node: LocalNode, reference: string): Promise<void> {
    const daemon = await this.daemon();
    const moved = await transferImage(daemon, node, reference).catch(async (error: Error) => {
      await node.ctr(['images', 'rm', reference]).catch(() => undefined);
      throw error;
    });
    this.log(`stand-in: ${reference} into the node, ${moved.sent} of ${moved.layers} layers sent (the rest it had)`);
    const repository = reference.slice(0, reference.lastIndexOf(':'));
    const previous = this.lastBuilt.get(repository);
    if (previous && previous !== reference) await daemon.docker(['rmi', previous]).catch(() => undefined);
    this.lastBuilt.set(repository, reference);
  }

  /** Only the packing, for a profile with no Running node: image.go packs before it looks at any node. */
  async pack(contextDir: string, dockerFile: string | undefined): Promise<void> {
    (await packContext(contextDir, dockerFile, this.log)).remove();
  }

  private daemon(): Promise<Dockerd> {
    return (this.builder ??= startDockerd(this.log));
  }

  async stop(): Promise<void> {
    const builder = this.builder;
    this.builder = undefined;
    if (builder) await (await builder).stop();
  }
}

/** Runs a command in the node, its output streamed line by line to `out`; rejects with its last 40 lines. */
function streamInNode(node: LocalNode, file: string, args: string[], out: Output): Promise<void> {
  const [command, commandArgs] = node.command(file, args);
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const keep = (sink: (text: string) => void) => (chunk: Buffer) => {
      const text = chunk.toString();
      sink(text);
      lines.push(...text.split('\n').filter((line) => line.trim()));
      if (lines.length > 200) lines.splice(0, lines.length - 40);
    };
    child.stdout.on('data', keep((text) => out.stdout(text)));
    child.stderr.on('data', keep((text) => out.stderr(text)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit status ${code}\n${lines.slice(-40).join('\n')}`))));
  });
}
