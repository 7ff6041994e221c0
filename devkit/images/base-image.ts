/**
 * The Node.js base image, made here (no Docker Hub): a minimal Debian trixie rootfs from
 * debootstrap with Debian's own nodejs (>= 20.19), npm from the npm registry (as the official
 * node images bundle it), and a `node` user with uid 1000 as in the official images.
 * It also trusts the CAs this machine added locally (/usr/local/share/ca-certificates), as builds
 * on networks with a TLS-intercepting proxy need (this workplace has one: without it `npm ci` in
 * the Dockerfile fails with SELF_SIGNED_CERT_IN_CHAIN); Debian's node reads the system store.
 * The rootfs tarball is cached per machine, keyed by a hash of this recipe and of those CAs.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashTree } from '../paths';
import { ensureAptPackages } from './apt';
import { IMAGES_CACHE, run } from './exec';

const SUITE = 'trixie';
/** Debian packages on top of debootstrap's minbase: node itself and the CA bundle npm's TLS needs. */
const PACKAGES = ['nodejs', 'ca-certificates'];
/** npm is not taken from Debian (its npm package drags in hundreds of node-* packages). */
const NPM_VERSION = '10.9.9';
/** CAs added on this machine (not Debian's own bundle), copied into the image's store. */
const LOCAL_CAS = '/usr/local/share/ca-certificates';
/** Left out of the image: caches, package lists, docs, manuals, translations, logs. */
const PRUNE = ['var/cache/apt', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'var/log', 'var/cache/debconf'];

/** The Debian mirror apt is configured with here (deb822 or one-line sources), so debootstrap uses the same one. */
export function debianMirror(): string {
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const uri = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s/m.exec(text);
    if (uri) return uri[1];
  }
  return 'http://deb.debian.org/debian';
}

/** Hash of everything that decides the base image's content. */
export function baseRecipeHash(): string {
  return createHash('sha256')
    .update(readFileSync(__filename))
    .update(JSON.stringify({ SUITE, PACKAGES, NPM_VERSION, mirror: debianMirror() }))
    .update(existsSync(LOCAL_CAS) ? hashTree([LOCAL_CAS]) : 'no local CAs')
    .digest('hex')
    .slice(0, 12);
}

export const baseImageRef = (): string => `local/node-base:node20-${SUITE}-${baseRecipeHash()}`;

/** Path of the base rootfs tarball, building it on first use on this machine (about 1-2 minutes). */
export function ensureBaseRootfs(log: (line: string) => void): string {
  const tarball = path.join(IMAGES_CACHE, `node-base-${baseRecipeHash()}.rootfs.tar`);
  if (existsSync(tarball)) return tarball;
  ensureAptPackages(['debootstrap'], log);
  mkdirSync(IMAGES_CACHE, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), 'koa-node-base-'));
  const rootfs = path.join(work, 'rootfs');
  try {
    const started = Date.now();
    const mirror = debianMirror();
    log(`debootstrap ${SUITE} from ${mirror} (first run on this machine: about a minute)…`);
    run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, rootfs, mirror], { quiet: true });
    installNpm(rootfs, work);
    if (existsSync(LOCAL_CAS)) {
      cpSync(LOCAL_CAS, path.join(rootfs, LOCAL_CAS), { recursive: true });
      run('chroot', [rootfs, 'update-ca-certificates'], { quiet: true });
    }
    // The official node images' user: uid/gid 1000, so `USER 1000:1000` has a name too.
    appendFileSync(path.join(rootfs, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/sh\n');
    appendFileSync(path.join(rootfs, 'etc/group'), 'node:x:1000:\n');
    mkdirSync(path.join(rootfs, 'home/node'), { recursive: true });
    run('chown', ['1000:1000', path.join(rootfs, 'home/node')]);
    for (const dir of PRUNE) {
      const full = path.join(rootfs, dir);
      if (existsSync(full)) for (const entry of readdirSync(full)) rmSync(path.join(full, entry), { recursive: true, force: true });
    }
    const version = run('chroot', [rootfs, 'node', '--version']).trim();
    log(`base rootfs: Debian ${SUITE}, node ${version}, npm ${NPM_VERSION} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    const partial = `${tarball}.partial`;
    run('tar', ['--numeric-owner', '--xattrs', '-C', rootfs, '-cf', partial, '.']);
    renameSync(partial, tarball);
    // Earlier recipes' rootfs and archives are dead weight now.
    for (const name of readdirSync(IMAGES_CACHE)) {
      if (name.startsWith('node-base-') && !name.includes(baseRecipeHash())) rmSync(path.join(IMAGES_CACHE, name), { force: true });
    }
    return tarball;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** npm from the npm registry into /usr/local, the layout the official images use. */
function installNpm(rootfs: string, work: string): void {
  const packed = run('npm', ['pack', `npm@${NPM_VERSION}`, '--silent', '--pack-destination', work]).trim().split('\n').pop()!;
  const target = path.join(rootfs, 'usr/local/lib/node_modules/npm');
  mkdirSync(target, { recursive: true });
  run('tar', ['-xzf', path.join(work, packed), '-C', target, '--strip-components=1', '--no-same-owner']);
  for (const tool of ['npm', 'npx']) symlinkSync(`../lib/node_modules/npm/bin/${tool}-cli.js`, path.join(rootfs, 'usr/local/bin', tool));
}
