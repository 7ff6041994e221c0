/**
 * The node's own network and mount namespaces. A holder process (`unshare`) keeps
 * them alive; every daemon of the node is started inside them with nsenter. In the
 * mount namespace tmpfs covers /run, /var/lib and /var/log, because some kubelet and
 * cAdvisor paths ignore --root-dir and containerd's socket is expected at
 * /run/containerd/containerd.sock: nothing the node writes there reaches the host.
 * A veth pair links the namespace to the host: LINK.host on the host side,
 * LINK.node (the node's IP, default route via the host side) inside.
 * When the last process of the namespaces is gone (teardown.ts), the kernel removes the veth,
 * the routes through it, the namespace's iptables rules and the tmpfs mounts.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import readline from 'node:readline';

/** Minikube's docker network: the node at .2, the host side at .1. */
export const LINK = { host: '192.168.49.1', node: '192.168.49.2', prefix: 24, hostDevice: 'koa-node0' } as const;

export function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

export interface NodeNamespace {
  /** PID of the holder: `nsenter -t pid` enters the namespaces. */
  pid: number;
  /** The namespaces' identities, as /proc/PID/ns/{mnt,net} name them. */
  mnt: string;
  net: string;
  /** The command line that runs `file args` inside the node's network and mount namespaces (for the
   *  supervisor): nsenter and its arguments; the process gets SIGKILL if we die. */
  command(file: string, args: string[]): [string, string[]];
  /** Runs a command inside the namespaces to completion (without blocking us); rejects on failure. */
  exec(file: string, args: string[]): Promise<string>;
}

const SETUP = [
  'set -e',
  // Detach from the host's mount peer groups first, then share within the namespace only:
  // the kubelet and runc need shared mounts, the host must never see ours.
  'mount --make-rprivate /',
  'mount --make-rshared /',
  'mount -t tmpfs -o mode=755 koa-node-run /run',
  'mount -t tmpfs -o mode=755 koa-node-var-lib /var/lib',
  'mount -t tmpfs -o mode=755 koa-node-var-log /var/log',
  'ip link set lo up',
  'echo 1 > /proc/sys/net/ipv4/ip_forward',
  'echo ready',
  // Holds the namespaces until teardown.ts kills it (or, by its parent-death signal, our death does).
  'exec cat >/dev/null',
].join('\n');

/** Prefix of every command started in the node: SIGKILL when the process that started it dies. */
const ORPHAN_KILL = ['setpriv', '--pdeathsig', 'KILL', '--'];

/** Creates the namespaces, the veth and the routes; fails if a node is already running here. */
export async function createNodeNamespace(podCidr: string): Promise<NodeNamespace> {
  if (spawnSync('ip', ['link', 'show', LINK.hostDevice], { stdio: 'ignore' }).status === 0) {
    throw new Error(`${LINK.hostDevice} exists: another local node is running on this machine (stop it first)`);
  }
  for (const cidr of [`${LINK.host}/${LINK.prefix}`, podCidr]) {
    const routes = run('ip', ['-4', 'route', 'show', 'match', cidr]).trim().split('\n').filter((line) => line && !line.startsWith('default'));
    if (routes.length) throw new Error(`${cidr} is already routed on this host (${routes[0]}); the node's addresses would clash`);
  }
  const holder = spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--', ...ORPHAN_KILL, 'sh', '-c', SETUP], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  holder.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const lines = readline.createInterface({ input: holder.stdout! });
    lines.once('line', () => resolve());
    holder.once('exit', (code) => reject(new Error(`the node's namespace holder exited (${code}): ${stderr.trim()}`)));
  });
  const pid = holder.pid!;
  const enter = ['-t', String(pid), '--net', '--mount', '--'];
  const exec = (file: string, args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile('nsenter', [...enter, file, ...args], { maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${file} ${args.join(' ')} failed in the node: ${stderr.trim() || error.message}`)) : resolve(stdout),
      ),
    );
  try {
    run('ip', ['link', 'add', LINK.hostDevice, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
    run('ip', ['addr', 'add', `${LINK.host}/${LINK.prefix}`, 'dev', LINK.hostDevice]);
    run('ip', ['link', 'set', LINK.hostDevice, 'up']);
    await exec('ip', ['addr', 'add', `${LINK.node}/${LINK.prefix}`, 'dev', 'eth0']);
    await exec('ip', ['link', 'set', 'eth0', 'up']);
    await exec('ip', ['route', 'add', 'default', 'via', LINK.host]);
    // The API server (on the host) reaches aggregated APIs such as metrics-server at their pod IPs.
    run('ip', ['route', 'add', podCidr, 'via', LINK.node, 'dev', LINK.hostDevice]);
  } catch (error) {
    holder.kill('SIGKILL');
    spawnSync('ip', ['link', 'del', LINK.hostDevice], { stdio: 'ignore' });
    throw error;
  }
  return {
    pid,
    mnt: readlinkSync(`/proc/${pid}/ns/mnt`),
    net: readlinkSync(`/proc/${pid}/ns/net`),
    command: (file, args) => ['nsenter', [...enter, ...ORPHAN_KILL, file, ...args]],
    exec,
  };
}
