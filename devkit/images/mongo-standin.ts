/**
 * Prepares the build context of the MongoDB stand-in image (mongo-standin/Dockerfile): the
 * static Go binaries of devkit/go/mongo-standin (FerretDB v1.24.2 as `mongod`, and a `mongosh`
 * stand-in), Debian's static busybox, and the small filesystem the official image's contract
 * needs (uid 999, /data/db, /data/configdb, /docker-entrypoint-initdb.d, /tmp).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureGoTool } from '../go-build';
import { hashTree } from '../paths';
import { IMAGES_CACHE, REPO_ROOT, run } from './exec';

const TOOL_DIR = path.join(REPO_ROOT, 'devkit', 'go', 'mongo-standin');
const RECIPE_DIR = path.join(__dirname, 'mongo-standin');
export const FERRETDB_VERSION = '1.24.2';

/** Hash of the Go sources, the Dockerfile and this recipe. */
export const mongoStandInHash = (): string => hashTree([TOOL_DIR, RECIPE_DIR], readFileSync(__filename, 'utf8'));
export const mongoStandInRef = (): string => `local/mongo-standin:ferretdb-${FERRETDB_VERSION}-${mongoStandInHash()}`;

/** The two static binaries (CGO_ENABLED=0), built once per machine per source hash by the wing's Go build helper. */
export function ensureMongoStandInBinaries(log: (line: string) => void): string {
  const dir = path.join(IMAGES_CACHE, `mongo-standin-bin-${hashTree([TOOL_DIR])}`);
  ensureGoTool(
    {
      what: 'the mongo stand-in binaries (FerretDB v1.24.2 + mongosh stand-in)',
      firstBuild: '1-3 minutes',
      into: { dir, names: ['mongod', 'mongosh'] },
      build: { cwd: TOOL_DIR, packages: ['./cmd/mongod', './cmd/mongosh'], ldflags: '-s -w' },
    },
    log,
  );
  return dir;
}

/** Debian's busybox-static, unpacked from its package (never installed on the host). */
function ensureBusybox(): string {
  const dir = path.join(IMAGES_CACHE, 'busybox-static');
  const binary = path.join(dir, 'bin', 'busybox');
  if (existsSync(binary)) return binary;
  const work = mkdtempSync(path.join(os.tmpdir(), 'koa-busybox-'));
  try {
    try {
      run('apt-get', ['download', 'busybox-static'], { cwd: work });
    } catch {
      run('apt-get', ['update', '-qq']); // a fresh machine has no package lists yet
      run('apt-get', ['download', 'busybox-static'], { cwd: work });
    }
    const deb = readdirSync(work).find((name) => name.endsWith('.deb'))!;
    run('dpkg-deb', ['-x', path.join(work, deb), path.join(work, 'root')]);
    mkdirSync(path.dirname(binary), { recursive: true });
    copyFileSync(path.join(work, 'root', 'bin', 'busybox'), binary);
    chmodSync(binary, 0o755);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A temporary build context; remove() deletes it. */
export function prepareMongoStandInContext(log: (line: string) => void): { dir: string; binaries: string; remove(): void } {
  const binaries = ensureMongoStandInBinaries(log);
  const busybox = ensureBusybox();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'koa-mongo-standin-'));
  const rootfs = path.join(dir, 'rootfs');
  for (const sub of ['usr/local/bin', 'bin', 'etc', 'tmp', 'docker-entrypoint-initdb.d']) mkdirSync(path.join(rootfs, sub), { recursive: true });
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  for (const name of ['mongod', 'mongosh']) copyFileSync(path.join(binaries, name), path.join(rootfs, 'usr/local/bin', name));
  copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = run(busybox, ['--list']).split('\n').filter((name) => name && name !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nmongodb:x:999:999::/data/db:/bin/sh\n');
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nmongodb:x:999:\n');
  for (const sub of ['data/db', 'data/configdb']) mkdirSync(path.join(dir, sub), { recursive: true });
  copyFileSync(path.join(RECIPE_DIR, 'Dockerfile'), path.join(dir, 'Dockerfile'));
  return { dir, binaries, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
