/**
 * Taking a node down, from what startNode recorded in its directory (state.json)
 * before changing anything: the containers (every process in the kubelet's cgroup
 * tree), then every process in the node's namespaces (containerd, its shims), which
 * frees the namespaces and with them the veth, the routes through it, the iptables
 * rules and the tmpfs mounts; then the empty cgroups and the kernel settings.
 * The same steps clean up after a run that died without stopping its node (killed
 * test runner): sweepStaleNodes() runs them for every node whose owner is gone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../wait';
import { cgroupPids, removeCgroupRoot, restoreSysctls } from './host-state';
import { LINK } from './namespace';

export interface NodeState {
  /** The process that started the node. */
  owner: number;
  /** The namespaces' identities (readlink /proc/PID/ns/mnt and …/net of the holder). */
  mnt: string;
  net: string;
  cgroupRoot: string;
  /** Kernel settings as they were before the kubelet started. */
  sysctls: Record<string, string>;
  dir: string;
}

const STATE_FILE = 'state.json';
export const NODE_DIR_PREFIX = 'koa-node-';

export function writeNodeState(state: NodeState): void {
  writeFileSync(path.join(state.dir, STATE_FILE), JSON.stringify(state, null, 2));
}

/** Running (a zombie, killed but not yet reaped by its parent, counts as gone). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

/** Processes in both of the node's namespaces (both, so a recycled namespace inode cannot match by chance). */
function processesInNamespaces(mnt: string, net: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/mnt`) === mnt && readlinkSync(`/proc/${name}/ns/net`) === net) pids.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

async function killAll(list: () => number[], what: string): Promise<void> {
  await eventually(
    `${what} to end`,
    async () => {
      const pids = list().filter(alive);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      return pids.length === 0;
    },
    { timeoutMs: 30_000, everyMs: 200 },
  );
}

export async function tearDown(state: NodeState, log: (line: string) => void): Promise<void> {
  await killAll(() => cgroupPids(state.cgroupRoot), 'the containers');
  await killAll(() => processesInNamespaces(state.mnt, state.net), "the node's processes");
  // The kernel frees the network namespace, and the veth with it, shortly after its last process.
  await eventually(`${LINK.hostDevice} to go`, async () => spawnSync('ip', ['link', 'show', LINK.hostDevice], { stdio: 'ignore' }).status !== 0, { timeoutMs: 10_000, everyMs: 100 });
  const left = removeCgroupRoot(state.cgroupRoot);
  if (left.length) log(`could not remove cgroups: ${left.join(', ')}`);
  const restored = restoreSysctls(state.sysctls);
  if (restored.length) log(`restored ${restored.join(', ')}`);
  rmSync(state.dir, { recursive: true, force: true });
}

/** Tears down every node left behind by a process that no longer exists. */
export async function sweepStaleNodes(log: (line: string) => void): Promise<void> {
  for (const name of readdirSync(os.tmpdir())) {
    const file = path.join(os.tmpdir(), name, STATE_FILE);
    if (!name.startsWith(NODE_DIR_PREFIX) || !existsSync(file)) continue;
    const state = JSON.parse(readFileSync(file, 'utf8')) as NodeState;
    if (alive(state.owner)) continue;
    log(`cleaning up the node left behind by process ${state.owner} (${state.dir})`);
    await tearDown(state, log);
  }
}
