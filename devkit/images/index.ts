/**
 * Images made here, for a node with no Docker Hub: each function returns the image's reference
 * and a docker-archive tarball that containerd imports (`ctr -n k8s.io images import <archive>`).
 * Archives are cached per machine in ~/.cache/koa-mongodb/images, keyed by what decides their
 * content, so a warm call returns at once without starting the builder.
 *
 *   ensureBaseImage()        local/node-base:node20-trixie-<recipe hash>   (debootstrap + Debian's nodejs)
 *   buildServiceImage(tag)   local/data-service:<tag>                       (service/Dockerfile on that base)
 *   buildAdminImage()        local/data-admin:<content hash>                (admin/Dockerfile on that base)
 *   ensureMongoStandIn()     local/mongo-standin:ferretdb-1.24.2-<hash>     (FerretDB posing as the mongo image)
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { contextHash } from '../../components/buildContext';
import { baseImageRef, baseRecipeHash, ensureBaseRootfs } from './base-image';
import { PROXY_BUILD_ARGS, startDockerd, type Dockerd } from './dockerd';
import { IMAGES_CACHE, REPO_ROOT } from './exec';
import { mongoStandInHash, mongoStandInRef, prepareMongoStandInContext } from './mongo-standin';

export interface ImageArtifact {
  /** Reference the node's pods name (docker.io/ is implied, as for any short name). */
  ref: string;
  /** docker-archive tarball holding that reference. */
  archive: string;
}

export interface ImageOptions {
  /** A running builder to use; otherwise one is started for the call (and stopped after it). */
  daemon?: Dockerd;
  log?: (line: string) => void;
}

const defaultLog = (line: string) => process.stderr.write(`${line}\n`);
const archivePath = (name: string) => path.join(IMAGES_CACHE, `${name}.docker.tar`);

/** The Node.js base image (Debian trixie rootfs with Debian's nodejs), made here. */
export async function ensureBaseImage(options: ImageOptions = {}): Promise<ImageArtifact> {
  const ref = baseImageRef();
  const archive = archivePath(`node-base-${baseRecipeHash()}`);
  if (existsSync(archive)) {
    // A daemon that is to build on it must have it (its data root is cached, so it usually has).
    if (options.daemon && !(await known(options.daemon, ref))) await options.daemon.docker(['load', '--input', archive]);
    return { ref, archive };
  }
  const log = options.log ?? defaultLog;
  const rootfs = ensureBaseRootfs(log);
  return usingDaemon(options, async (daemon) => {
    await importBase(daemon, ref, rootfs);
    await save(daemon, ref, archive);
    rmSync(rootfs, { force: true }); // the archive holds the same bytes
    return { ref, archive };
  });
}

export interface ServiceImageOptions extends ImageOptions {
  /** Build context holding the Dockerfile; defaults to the repository's service/. */
  contextDir?: string;
}

/**
 * The data service's image, built from its own Dockerfile by dockerd's classic builder with
 * NODE_IMAGE set to the base made here. `tag` defaults to the content hash of the build context
 * (the tag the stack itself computes).
 */
export function buildServiceImage(tag?: string, options: ServiceImageOptions = {}): Promise<ImageArtifact> {
  return buildFromDirectory('data-service', options.contextDir ?? path.join(REPO_ROOT, 'service'), tag, options);
}

/** The admin image (admin/Dockerfile: the users Jobs, the backups), built as the service's is, tagged by its content. */
export function buildAdminImage(options: ImageOptions = {}): Promise<ImageArtifact> {
  return buildFromDirectory('data-admin', path.join(REPO_ROOT, 'admin'), undefined, options);
}

async function buildFromDirectory(name: string, contextDir: string, tag: string | undefined, options: ImageOptions): Promise<ImageArtifact> {
  const content = contextHash(contextDir);
  const ref = `local/${name}:${tag ?? content}`;
  const archive = archivePath(`${name}-${tag ?? content}-${content}-${baseRecipeHash()}`);
  if (existsSync(archive)) return { ref, archive };
  const log = options.log ?? defaultLog;
  return usingDaemon(options, async (daemon) => {
    const base = (await ensureBaseImage({ daemon, log })).ref;
    const started = Date.now();
    log(`building ${ref} from ${path.relative(REPO_ROOT, contextDir) || '.'}/Dockerfile on ${base}…`);
    await daemon.docker(
      ['build', '--force-rm', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, ...PROXY_BUILD_ARGS.flatMap((arg) => ['--build-arg', arg]), '--tag', ref, contextDir],
    );
    log(`built ${ref} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await save(daemon, ref, archive);
    // Archives of this image on an earlier base are stale (those of other tags on this base are kept).
    for (const file of readdirSync(IMAGES_CACHE)) {
      if (file.startsWith(`${name}-`) && !file.endsWith(`-${baseRecipeHash()}.docker.tar`)) rmSync(path.join(IMAGES_CACHE, file), { force: true });
    }
    return { ref, archive };
  });
}

/** The MongoDB stand-in: FerretDB v1.24.2 (SQLite) honouring the parts of the mongo image's contract the stack uses. */
export async function ensureMongoStandIn(options: ImageOptions = {}): Promise<ImageArtifact> {
  const ref = mongoStandInRef();
  const archive = archivePath(`mongo-standin-${mongoStandInHash()}`);
  if (existsSync(archive)) return { ref, archive };
  const log = options.log ?? defaultLog;
  const context = prepareMongoStandInContext(log);
  return usingDaemon(options, async (daemon) => {
    const started = Date.now();
    await daemon.docker(['build', '--force-rm', '--network', 'none', '--tag', ref, context.dir]);
    context.remove();
    await dropOtherTags(daemon, ref);
    log(`built ${ref} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await save(daemon, ref, archive);
    // Earlier stand-ins' archives and binaries are stale now.
    const keep = [path.basename(archive), path.basename(context.binaries)];
    for (const name of readdirSync(IMAGES_CACHE)) {
      if (name.startsWith('mongo-standin-') && !keep.includes(name)) rmSync(path.join(IMAGES_CACHE, name), { recursive: true, force: true });
    }
    return { ref, archive };
  });
}

async function usingDaemon<T>(options: ImageOptions, work: (daemon: Dockerd) => Promise<T>): Promise<T> {
  if (options.daemon) return work(options.daemon);
  const daemon = await startDockerd(options.log ?? defaultLog);
  try {
    return await work(daemon);
  } finally {
    await daemon.stop();
  }
}

/** The base image from its rootfs tarball, into the daemon. */
async function importBase(daemon: Dockerd, ref: string, rootfs: string): Promise<void> {
  await daemon.docker([
    'import',
    '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--change', 'CMD ["node"]',
    '--message', 'Debian trixie minbase + nodejs (debootstrap), npm from the npm registry: devkit/images/base-image.ts',
    rootfs, ref,
  ]);
  // A new base leaves every cached build stage stale: prune them with the old bases.
  await dropOtherTags(daemon, ref, { prune: true });
}

/** The data root is cached: drop earlier recipes' tags of this repository (and the layers only they held). */
async function dropOtherTags(daemon: Dockerd, ref: string, options: { prune?: boolean } = {}): Promise<void> {
  const repository = ref.slice(0, ref.lastIndexOf(':'));
  const tags = (await daemon.docker(['image', 'ls', repository, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n');
  for (const old of tags.filter((tag) => tag && tag !== ref)) await daemon.docker(['rmi', old]).catch(() => undefined);
  if (options.prune) await daemon.docker(['image', 'prune', '--force']);
}

async function known(daemon: Dockerd, ref: string): Promise<boolean> {
  return daemon.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).then(() => true, () => false);
}

async function save(daemon: Dockerd, ref: string, archive: string): Promise<void> {
  mkdirSync(IMAGES_CACHE, { recursive: true });
  const partial = `${archive}.partial`;
  await daemon.docker(['save', '--output', partial, ref]);
  renameSync(partial, archive);
}
