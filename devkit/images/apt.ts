/**
 * Debian packages the image builders need (debootstrap, Debian's docker.io), installed by the
 * project itself so a clean machine works. Services are never started by the install: the
 * daemon only ever runs in namespaces of our own (see dockerd.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';

function installed(name: string): boolean {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.includes('install ok installed');
}

/** Installs the missing ones among `names` with apt-get (root), without starting any service. */
export function ensureAptPackages(names: string[], log: (line: string) => void): void {
  const missing = names.filter((name) => !installed(name));
  if (missing.length === 0) return;
  log(`installing Debian packages: ${missing.join(' ')}`);
  // docker.io's postinst would start dockerd in the host's namespaces; policy-rc.d forbids it.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = (args: string[]) => {
      const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
      if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${result.status})`);
    };
    run(['update', '-qq']);
    run(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}
