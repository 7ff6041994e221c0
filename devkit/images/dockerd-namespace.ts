/**
 * Runs INSIDE the builder's own namespaces (network, mount, pid; see dockerd.ts), as their pid 1:
 * brings up loopback, hides the host's /run (so dockerd finds no system containerd and writes no
 * state there), relays 127.0.0.1:<egress port> to the host's egress proxy socket (the only way out, used by
 * `npm ci` during builds), relays connections on ingress.sock to a loopback port in here (how
 * tests reach a container), and runs dockerd until stdin closes. When this process exits the pid
 * namespace dies with everything in it, and the network namespace with its interfaces and rules.
 *
 * Usage: dockerd-namespace.ts <run dir> <data root> <cgroup parent> <egress port>
 */
import { execFileSync, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const [runDir, dataRoot, cgroupParent, egressPort] = process.argv.slice(2);
if (!runDir || !dataRoot || !cgroupParent || !egressPort) {
  console.error('usage: dockerd-namespace.ts <run dir> <data root> <cgroup parent> <egress port>');
  process.exit(2);
}

execFileSync('ip', ['link', 'set', 'lo', 'up']);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=755,size=64m', 'koa-images-run', '/run']);

/** Pipes two sockets together, tearing both down when either ends or fails. */
function splice(a: net.Socket, b: net.Socket): void {
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
  a.pipe(b);
  b.pipe(a);
}

net
  .createServer((client) => splice(client, net.connect(path.join(runDir, 'egress.sock'))))
  .listen(Number(egressPort), '127.0.0.1');

// Ingress: the client's first line names the loopback port to reach in here.
net
  .createServer((client) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(10);
      if (newline < 0) return;
      client.off('data', onData);
      const port = Number(head.subarray(0, newline).toString());
      if (!Number.isInteger(port) || port <= 0 || port > 65535) {
        client.destroy();
        return;
      }
      const target = net.connect(port, '127.0.0.1');
      const rest = head.subarray(newline + 1);
      if (rest.length > 0) target.write(rest);
      splice(client, target);
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  })
  .listen(path.join(runDir, 'ingress.sock'));

const logFd = openSync(path.join(runDir, 'dockerd.log'), 'a');
const dockerd = spawn(
  'dockerd',
  [
    `--host=unix://${path.join(runDir, 'docker.sock')}`,
    `--data-root=${dataRoot}`,
    `--exec-root=${path.join(runDir, 'exec')}`,
    `--pidfile=${path.join(runDir, 'dockerd.pid')}`,
    `--config-file=${path.join(runDir, 'daemon.json')}`,
    '--storage-driver=overlay2',
    // No bridge, no iptables, no forwarding: builds and test containers use this namespace's own network.
    '--bridge=none',
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--exec-opt=native.cgroupdriver=cgroupfs',
    `--cgroup-parent=/${cgroupParent}`,
    '--log-level=warn',
  ],
  { stdio: ['ignore', logFd, logFd] },
);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  dockerd.kill('SIGTERM');
  setTimeout(() => dockerd.kill('SIGKILL'), 20_000).unref();
}
process.stdin.on('end', stop).on('close', stop).resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
dockerd.on('exit', (code, signal) => process.exit(stopping ? 0 : (code ?? (signal ? 1 : 0)) || 1));
