/**
 * What the node changes on the host outside its namespaces, saved before and put
 * back after: the kernel settings the kubelet rewrites at each start (global, not
 * per namespace) and the cgroup tree it creates under its cgroupRoot in every v1
 * hierarchy (the container processes in it are killed first).
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** The kubelet's setupKernelTunables (protectKernelDefaults: false) sets these. */
const KUBELET_SYSCTLS = ['kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes'];

/** The current values of the settings the kubelet changes, to put back later. */
export function readSysctls(): Record<string, string> {
  const saved: Record<string, string> = {};
  for (const name of KUBELET_SYSCTLS) {
    const file = path.join('/proc/sys', name);
    if (existsSync(file)) saved[name] = readFileSync(file, 'utf8').trim();
  }
  return saved;
}

/** Writes back every value that differs from `saved`; returns the ones it restored. */
export function restoreSysctls(saved: Record<string, string>): string[] {
  const restored: string[] = [];
  for (const [name, value] of Object.entries(saved)) {
    const file = path.join('/proc/sys', name);
    if (readFileSync(file, 'utf8').trim() === value) continue;
    writeFileSync(file, value);
    restored.push(`${name.replaceAll('/', '.')}=${value}`);
  }
  return restored;
}

const CGROUP_FS = '/sys/fs/cgroup';

/** Every cgroup v1 hierarchy mounted under /sys/fs/cgroup (cpu, memory, …, name=systemd). */
function hierarchies(): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return mounts
    .map((line) => line.split(' '))
    .filter((fields) => fields[4]?.startsWith(`${CGROUP_FS}/`) && fields[fields.indexOf('-') + 1] === 'cgroup')
    .map((fields) => fields[4]);
}

/**
 * Creates `root` (e.g. /koa-node-1234) in every hierarchy, which the kubelet requires of
 * its cgroupRoot; cpuset's needs its parent's cpus and mems before any task can join.
 */
export function createCgroupRoot(root: string): { hierarchies: string[] } {
  const all = hierarchies();
  for (const hierarchy of all) {
    const dir = path.join(hierarchy, root);
    mkdirSync(dir, { recursive: true });
    if (existsSync(path.join(dir, 'cpuset.cpus'))) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(path.join(dir, file), readFileSync(path.join(hierarchy, file), 'utf8').trim());
    }
  }
  return { hierarchies: all };
}

/** PIDs of every process in `root`'s subtree, in any hierarchy. */
export function cgroupPids(root: string): number[] {
  const pids = new Set<number>();
  const visit = (dir: string) => {
    for (const line of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
    for (const name of readdirSync(dir)) {
      const child = path.join(dir, name);
      if (statSync(child).isDirectory()) visit(child);
    }
  };
  for (const hierarchy of hierarchies()) if (existsSync(path.join(hierarchy, root))) visit(path.join(hierarchy, root));
  return [...pids];
}

/** Removes `root`'s subtree, deepest first, in every hierarchy; returns what could not be removed. */
export function removeCgroupRoot(root: string): string[] {
  const left: string[] = [];
  const remove = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const child = path.join(dir, name);
      if (statSync(child).isDirectory()) remove(child);
    }
    try {
      rmdirSync(dir);
    } catch (error) {
      left.push(`${dir} (${(error as NodeJS.ErrnoException).code})`);
    }
  };
  for (const hierarchy of hierarchies()) if (existsSync(path.join(hierarchy, root))) remove(path.join(hierarchy, root));
  return left;
}
