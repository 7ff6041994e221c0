/**
 * Debian's dockerd (docker.io 20.10) as a builder that never touches the host's network: it runs
 * in network, mount and pid namespaces of its own (unshare), with no bridge and no iptables, its
 * data root in the per-machine cache (so layers are reused between runs) and its sockets, exec
 * root and logs in a temporary directory. Builds reach only the npm registry, through the egress
 * proxy. stop() ends the namespace (and with it every process, mount and interface in it) and
 * removes the cgroups dockerd made on the host.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../wait';
import { ensureAptPackages } from './apt';
import { allowedEgressHosts, startEgressProxy } from './egress-proxy';
import { IMAGES_CACHE } from './exec';

const RUN_DIR_PREFIX = 'koa-images-dockerd-';
const CGROUP_PREFIX = 'koa-mongodb-images-';

/** Loopback port, inside the namespace, of the relay to the egress proxy. */
export const EGRESS_PORT = 3128;
/** Build args that route a build's HTTPS (npm ci) through the egress proxy. */
export const PROXY_BUILD_ARGS = [`HTTPS_PROXY=http://127.0.0.1:${EGRESS_PORT}`, `https_proxy=http://127.0.0.1:${EGRESS_PORT}`];
/** Debian's docker CLI, matching the daemon (a newer CLI elsewhere on PATH would work too, but this one is pinned with it). */
export const DOCKER_CLI = '/usr/bin/docker';

export interface DockerResult {
  stdout: string;
  stderr: string;
}

export interface DockerOptions {
  /** Each line of its output, as it comes. */
  log?: (line: string) => void;
  /** Where its output goes instead (e.g. `docker save`'s archive, streamed on): not kept in the result. */
  stdout?: NodeJS.WritableStream;
}

export interface Dockerd {
  /** Runs the docker CLI against this daemon; rejects with its stderr when it fails. */
  docker(args: string[], options?: DockerOptions): Promise<DockerResult>;
  /** A host loopback port that reaches `port` on the namespace's loopback (where --network host containers listen). */
  forward(port: number): Promise<{ port: number; close(): Promise<void> }>;
  stop(): Promise<void>;
  readonly runDir: string;
}

export async function startDockerd(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<Dockerd> {
  ensureAptPackages(['docker.io', 'tini', 'iproute2', 'util-linux'], log);
  const dataRoot = path.join(IMAGES_CACHE, 'dockerd');
  mkdirSync(dataRoot, { recursive: true });
  const releaseLock = await lockDataRoot(`${dataRoot}.lock`, log);
  removeLeftovers();
  const runDir = mkdtempSync(path.join(os.tmpdir(), RUN_DIR_PREFIX));
  writeFileSync(path.join(runDir, 'owner'), String(process.pid));
  const cgroupParent = `${CGROUP_PREFIX}${process.pid}`;
  writeFileSync(path.join(runDir, 'daemon.json'), '{}\n');
  mkdirSync(path.join(runDir, 'docker-config'));

  let proxy: http.Server | undefined;
  let child: ChildProcess | undefined;
  let stopping = false;
  // Killed by a signal (say, a test runner's), clean up what can be cleaned synchronously.
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    if (child?.pid) process.kill(child.pid, 'SIGKILL'); // --kill-child takes the whole pid namespace with it
    spawnSync('sleep', ['1']);
    removeCgroups(cgroupParent);
    rmSync(runDir, { recursive: true, force: true });
    releaseLock();
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const cleanUp = async () => {
    stopping = true;
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.stdin?.end();
      const timer = setTimeout(() => child!.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
    removeCgroups(cgroupParent);
    rmSync(runDir, { recursive: true, force: true });
    releaseLock();
  };

  try {
    proxy = await startEgressProxy(path.join(runDir, 'egress.sock'), allowedEgressHosts(), log);
    const tsx = require.resolve('tsx/cli');
    const logFd = openSync(path.join(runDir, 'namespace.log'), 'a');
    // tini (Debian's, shipped with docker.io) is the namespace's pid 1: it reaps the orphaned shims.
    child = spawn(
      'unshare',
      ['--net', '--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--kill-child=SIGKILL', '--',
        '/usr/bin/tini', '-s', '--', process.execPath, tsx, path.join(__dirname, 'dockerd-namespace.ts'), runDir, dataRoot, cgroupParent, String(EGRESS_PORT)],
      { stdio: ['pipe', logFd, logFd] },
    );
    closeSync(logFd);
    const socket = path.join(runDir, 'docker.sock');
    const daemonLog = () => ['namespace.log', 'dockerd.log'].map((name) => tail(path.join(runDir, name))).join('\n');
    child.once('exit', (code, signal) => {
      if (!stopping) log(`the image builder's namespace exited unexpectedly (${signal ?? code}):\n${daemonLog()}`);
    });
    await eventually(
      'dockerd to answer',
      async () => {
        if (child!.exitCode !== null) throw new Error(`the builder namespace exited with ${child!.exitCode}`);
        return existsSync(socket) && (await cli(runDir, ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
      },
      { timeoutMs: 60_000, everyMs: 300, detail: daemonLog },
    );
  } catch (error) {
    await cleanUp();
    throw error;
  }

  let stopped: Promise<void> | undefined;
  return {
    runDir,
    docker: (args, options) => cli(runDir, args, options),
    forward: (port) => forward(path.join(runDir, 'ingress.sock'), port),
    stop: () => (stopped ??= cleanUp()),
  };
}

/** Starts a daemon, runs `work` with it, and always stops it. */
export async function withDockerd<T>(work: (daemon: Dockerd) => Promise<T>, log?: (line: string) => void): Promise<T> {
  const daemon = await startDockerd(log);
  try {
    return await work(daemon);
  } finally {
    await daemon.stop();
  }
}

/** What the docker CLI needs to talk to the daemon of `runDir` (the legacy builder: see the README). */
export function dockerCliEnv(runDir: string): Record<string, string> {
  return { DOCKER_HOST: `unix://${path.join(runDir, 'docker.sock')}`, DOCKER_CONFIG: path.join(runDir, 'docker-config'), DOCKER_BUILDKIT: '0' };
}

function cli(runDir: string, args: string[], { log, stdout: sink }: DockerOptions = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, args, {
      env: { ...process.env, ...dockerCliEnv(runDir) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    if (sink) {
      child.stdout.pipe(sink);
      sink.once('error', () => child.kill()); // a reader gone: the CLI must not block on a full pipe
    } else child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (log) for (const line of chunk.toString().split('\n')) if (line.trim()) log(line);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`docker ${args.join(' ')} failed (exit ${code})\n${`${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n')}`));
    });
  });
}

async function forward(ingress: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(ingress);
    upstream.write(`${port}\n`); // queued ahead of anything the client sends

    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One daemon per data root at a time: a lock file holding the owner's pid, taken over when that pid is gone. */
async function lockDataRoot(lockFile: string, log: (line: string) => void): Promise<() => void> {
  let warned = false;
  await eventually(
    `the builder's data root (${lockFile}) to be free`,
    async () => {
      try {
        writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
        return true;
      } catch {
        const owner = Number(readFileSync(lockFile, 'utf8'));
        if (!owner || !alive(owner)) {
          rmSync(lockFile, { force: true });
          return false;
        }
        if (!warned) log(`waiting for the image builder used by pid ${owner}…`);
        warned = true;
        return false;
      }
    },
    { timeoutMs: 30 * 60_000, everyMs: 1000 },
  );
  return () => rmSync(lockFile, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What a builder killed outright (SIGKILL) left: run directories and cgroups of owners that are gone. */
function removeLeftovers(): void {
  for (const name of readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(RUN_DIR_PREFIX))) {
    const dir = path.join(os.tmpdir(), name);
    const owner = existsSync(path.join(dir, 'owner')) ? Number(readFileSync(path.join(dir, 'owner'), 'utf8')) : 0;
    if (owner && !alive(owner)) rmSync(dir, { recursive: true, force: true });
  }
  const root = '/sys/fs/cgroup';
  if (!existsSync(root)) return;
  const parents = new Set<string>();
  for (const controller of readdirSync(root)) {
    const dir = path.join(root, controller);
    try {
      for (const name of readdirSync(dir)) if (name.startsWith(CGROUP_PREFIX) && !alive(Number(name.slice(CGROUP_PREFIX.length)))) parents.add(name);
    } catch {
      // not a directory
    }
  }
  for (const parent of parents) removeCgroups(parent);
}

/** dockerd's cgroups live in the host's (v1) hierarchies: remove ours, deepest first. */
function removeCgroups(parent: string): void {
  const root = '/sys/fs/cgroup';
  if (!existsSync(root)) return;
  const candidates = [path.join(root, parent), ...readdirSync(root).map((controller) => path.join(root, controller, parent))];
  const removeTree = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) removeTree(full);
    }
    rmdirSync(dir);
  };
  for (const dir of new Set(candidates)) {
    try {
      if (existsSync(dir)) removeTree(dir);
    } catch {
      // a symlinked controller (cpu -> cpu,cpuacct) was already removed through its other name
    }
  }
}

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-20).join('\n') : '';
}
