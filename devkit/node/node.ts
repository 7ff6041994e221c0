/**
 * A real one-node cluster on this machine, joined to the local control plane
 * (devkit/control-plane.ts): containerd + runc + bridge CNI, the kubelet and
 * kube-proxy (iptables) v1.34.4, all in network and mount namespaces of their own
 * (namespace.ts), then CoreDNS, metrics-server and the `standard` StorageClass
 * (addons.ts, provisioner.ts). Images come in by `importImage` (an OCI or docker
 * archive, `ctr images import`); nothing is ever pulled.
 *
 *   const plan = prepareNode();
 *   const plane = await startControlPlane(log, plan.controlPlane);
 *   const node = await startNode(plane, plan);   // node.nodeIp, node.importImage(tar), node.stop()
 *
 * or `startNodeCluster()` for both. stop() leaves the host as it was: processes,
 * namespaces (and with them the veth, routes, iptables rules and tmpfs mounts), the
 * kubelet's cgroups and the kernel settings it changed.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../control-plane';
import { supervise, type Supervised } from '../supervisor';
import { KubeClient } from '../kube';
import { eventually } from '../wait';
import { IMAGES, corednsManifests, metricsServerManifests, storageClassManifest } from './addons';
import { createAll } from './apply';
import { ensureNodeBinaries, type NodeBinaries } from './binaries';
import { makeNodeCerts } from './certs';
import { CLUSTER, CONTAINERD_SOCKET, cniConfig, containerdConfig, kubeProxyConfig, kubeletConfig, nodeKubeconfig } from './config';
import { createCgroupRoot, readSysctls } from './host-state';
import { LINK, createNodeNamespace } from './namespace';
import { NETPOL_HEALTH_PORT, SERVICE_CIDR, ensureNetpolBinary, netpolArgs } from './netpol';
import { writeScratchImage, type ScratchImage } from './oci-image';
import { startProvisioner } from './provisioner';
import { RELAY, startApiRelay } from './relay';
import { NODE_DIR_PREFIX, sweepStaleNodes, tearDown, writeNodeState, type NodeState } from './teardown';

export const NODE_NAME = 'koa-node';

export interface NodePlan {
  dir: string;
  /** Pass to startControlPlane: no kwok, and the API server flags the node needs. */
  controlPlane: ControlPlaneOptions;
  caCert: string;
}

export interface NodeOptions {
  /** metrics-server's --metric-resolution: Minikube's 60s by default; shorter makes the HPA react sooner. */
  metricResolution?: string;
  /** Start metrics-server with the node (default true); false leaves it to `addons enable` (the minikube stand-in). */
  metricsServer?: boolean;
  /**
   * Also serve the API server on the node's own address at this port, as a Minikube node does
   * (https://192.168.49.2:8443): a relay inside the node's namespaces to the host-side relay. A
   * kubeconfig naming it keeps its address when the control plane is recreated on another port.
   */
  nodeApiPort?: number;
  /**
   * Enforce NetworkPolicy (default true): kube-router's network policy controller runs on the node
   * (netpol.ts), as Calico does on Minikube with --cni=calico. false: the bridge CNI alone, which ignores it.
   */
  networkPolicy?: boolean;
}

export interface LocalNode {
  name: string;
  /** The node's InternalIP, reachable from the host (NodePorts answer on it). */
  nodeIp: string;
  /**
   * Makes an image archive (`docker save` or OCI layout tar; on a path the node sees, i.e. not under
   * /run, /var/lib or /var/log) available to the node's containerd, under its names and also as
   * repo@sha256:<manifest digest>, so pods may name it by digest as a registry's image would be.
   * Returns the references it made.
   */
  importImage(tarPath: string): Promise<string[]>;
  /** Runs a command inside the node's namespaces (its network: iptables, ip). */
  exec(file: string, args: string[]): Promise<string>;
  /** Runs `ctr` against the node's containerd, in the k8s.io namespace where the kubelet's images and containers are. */
  ctr(args: string[]): Promise<string>;
  /** The node's working directory (logs/, configs); removed by stop(). */
  dir: string;
  /** The cgroup (in every v1 hierarchy, e.g. /koa-node-1234) the node's containers live under; stop() empties and removes it. */
  cgroupRoot: string;
  /** The command line that runs `file args` inside the node's namespaces (SIGKILL if we die): for a caller that streams its output. */
  command(file: string, args: string[]): [string, string[]];
  /**
   * Starts a daemon the node supervises: inside its namespaces (or beside them, on the host, with `hostSide`),
   * its output in `<dir>/logs/<name>.log`, stopped by stop() before the node's own daemons (the latest first).
   * A daemon of that name still running is returned as it is, not started twice.
   */
  daemon(name: string, file: string, args: string[], options?: { hostSide?: boolean }): Supervised;
  stop(): Promise<void>;
}

/** Creates the node's directory and certificates, and the control plane options that go with them. */
export function prepareNode(): NodePlan {
  const dir = mkdtempSync(path.join(os.tmpdir(), NODE_DIR_PREFIX));
  const certs = makeNodeCerts(path.join(dir, 'pki'));
  return {
    dir,
    caCert: certs.caCert,
    controlPlane: {
      kwok: false,
      apiServerArgs: [
        // Pods reach the API server through the `kubernetes` Service, whose endpoint is this address
        // (the host side of the node's veth, where startNode relays to the loopback listener).
        `--advertise-address=${LINK.host}`,
        `--requestheader-client-ca-file=${certs.caCert}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${certs.frontProxyCert}`,
        `--proxy-client-key-file=${certs.frontProxyKey}`,
        '--enable-aggregator-routing=true',
        `--kubelet-client-certificate=${certs.kubeletClientCert}`,
        `--kubelet-client-key=${certs.kubeletClientKey}`,
        '--kubelet-preferred-address-types=InternalIP',
      ],
    },
  };
}

/** Installs the node's Debian packages if any is missing (devkit/node/install-packages.sh). */
export function ensureNodePackages(log: (line: string) => void): void {
  const result = spawnSync('bash', [path.join(__dirname, 'install-packages.sh')], { encoding: 'utf8' });
  for (const line of `${result.stdout}${result.stderr}`.trim().split('\n')) if (line) log(line);
  if (result.status !== 0) throw new Error(`devkit/node/install-packages.sh failed (exit ${result.status})`);
}

function buildImages(bin: NodeBinaries, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const images: Array<ScratchImage & { file: string }> = [
    { file: 'pause', name: IMAGES.pause, files: { '/pause': bin.pause }, entrypoint: ['/pause'] },
    { file: 'coredns', name: IMAGES.coredns, files: { '/coredns': bin.coredns }, entrypoint: ['/coredns'] },
    { file: 'metrics-server', name: IMAGES.metricsServer, files: { '/metrics-server': bin.metricsServer }, entrypoint: ['/metrics-server'], dirs: ['/tmp'] },
    { file: 'nettool', name: IMAGES.nettool, files: { '/nettool': bin.nettool }, entrypoint: ['/nettool'] },
  ];
  return images.map((image) => {
    const out = path.join(dir, `${image.file}.tar`);
    writeScratchImage(image, out);
    return out;
  });
}

export async function startNode(plane: ControlPlane, plan: NodePlan, log: (line: string) => void = console.log, options: NodeOptions = {}): Promise<LocalNode> {
  if (process.getuid?.() !== 0) throw new Error('a real node needs root (namespaces, cgroups, iptables, mounts); kwok needs none: drop --node');
  const started = Date.now();
  const since = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  ensureNodePackages(log);
  const bin = ensureNodeBinaries(log);
  const kubeRouter = options.networkPolicy === false ? undefined : ensureNetpolBinary(log);
  const archives = buildImages(bin, path.join(plan.dir, 'images'));

  const { dir } = plan;
  const logs = path.join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const tail = (name: string) => () => {
    try {
      return readFileSync(path.join(logs, `${name}.log`), 'utf8').split('\n').slice(-25).join('\n');
    } catch {
      return '';
    }
  };

  const kubeconfig = parse(readFileSync(plane.kubeconfig, 'utf8')) as { users: Array<{ user: { token: string } }> };
  const token = kubeconfig.users[0].user.token;
  const apiPort = Number(new URL(plane.server).port);
  const api = KubeClient.fromKubeconfig(plane.kubeconfig);

  const cgroupRoot = `/koa-node-${process.pid}`;
  const daemons: Supervised[] = [];
  let state: NodeState | undefined;
  let provisioner: { stop(): Promise<void> } | undefined;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await provisioner?.stop();
    // The agents first (SIGTERM, so the kubelet does not restart what goes next), containerd and the relay last.
    for (const daemon of [...daemons].reverse()) await daemon.stop(10_000);
    if (state) await tearDown(state, log);
    else rmSync(dir, { recursive: true, force: true });
  };

  try {
    await sweepStaleNodes(log);
    const node = await createNodeNamespace(CLUSTER.podCidr);
    // Recorded before anything else changes: what stop(), or the next run's sweep if we die, undoes.
    state = { owner: process.pid, mnt: node.mnt, net: node.net, cgroupRoot, sysctls: readSysctls(), dir };
    writeNodeState(state);
    createCgroupRoot(cgroupRoot);
    daemons.push(await startApiRelay(LINK.host, apiPort));
    const daemon = (name: string, file: string, args: string[], { hostSide = false }: { hostSide?: boolean } = {}) => {
      const running = daemons.find((supervised) => supervised.name === name && supervised.running());
      if (running) return running;
      if (stopped) throw new Error(`the node is stopped: cannot start ${name}`);
      const [command, commandArgs] = hostSide ? [file, args] : node.command(file, args);
      const supervised = supervise(name, command, { args: commandArgs, logFile: path.join(logs, `${name}.log`) });
      daemons.push(supervised);
      return supervised;
    };

    const cniDir = path.join(dir, 'cni');
    mkdirSync(cniDir, { recursive: true });
    writeFileSync(path.join(cniDir, '10-koa-node.conflist'), cniConfig());
    writeFileSync(path.join(dir, 'containerd.toml'), containerdConfig({ sandboxImage: IMAGES.pause, cniConfDir: cniDir }));
    writeFileSync(path.join(dir, 'kubeconfig'), nodeKubeconfig(`https://${LINK.host}:${apiPort}`, token), { mode: 0o600 });
    writeFileSync(path.join(dir, 'kubelet.yaml'), kubeletConfig({ cgroupRoot, clientCaFile: plan.caCert, nodeIp: LINK.node, resolvConf: '/etc/resolv.conf' }));
    writeFileSync(path.join(dir, 'kube-proxy.yaml'), kubeProxyConfig({ kubeconfig: path.join(dir, 'kubeconfig'), nodeName: NODE_NAME }));

    if (options.nodeApiPort) {
      const port = options.nodeApiPort;
      daemon('api-relay-node', process.execPath, ['-e', RELAY, LINK.node, String(port), LINK.host, String(apiPort)]);
      await eventually(`the API server relay on ${LINK.node}:${port}`, () => canConnect(LINK.node, port), { timeoutMs: 15_000, everyMs: 100, detail: tail('api-relay-node') });
    }
    daemon('containerd', 'containerd', ['--config', path.join(dir, 'containerd.toml')]);
    const ctr = (args: string[]) => node.exec('ctr', ['--address', CONTAINERD_SOCKET, '--namespace', 'k8s.io', ...args]);
    await eventually('containerd', async () => (await ctr(['version'])).includes('Server'), { timeoutMs: 30_000, detail: tail('containerd') });
    for (const archive of archives) await ctr(['images', 'import', archive]);
    log(`containerd up, images imported (${since()})`);

    daemon('kubelet', bin.kubelet, [
      `--config=${path.join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${path.join(dir, 'kubeconfig')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${LINK.node}`,
      '--v=1',
    ]);
    await eventually(
      `node ${NODE_NAME} to be Ready`,
      async () => {
        const object = await api.get('v1', 'Node', undefined, NODE_NAME);
        return object?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True') ?? false;
      },
      { timeoutMs: 120_000, everyMs: 500, detail: tail('kubelet') },
    );
    log(`node ${NODE_NAME} Ready at ${LINK.node} (${since()})`);

    daemon('kube-proxy', bin.kubeProxy, [`--config=${path.join(dir, 'kube-proxy.yaml')}`, '--v=1']);
    if (kubeRouter) daemon('kube-router', kubeRouter, netpolArgs({ kubeconfig: path.join(dir, 'kubeconfig'), nodeName: NODE_NAME, serviceCidr: SERVICE_CIDR }));
    const metrics = options.metricsServer === false ? [] : metricsServerManifests(options.metricResolution);
    await createAll(api, [storageClassManifest(), ...corednsManifests(), ...metrics]);
    provisioner = startProvisioner(api, path.join(dir, 'hostpath'), (line) => log(`storage: ${line}`));
    await eventually(
      'CoreDNS to be ready',
      async () => ((await api.get('apps/v1', 'Deployment', 'kube-system', 'coredns'))?.status?.readyReplicas ?? 0) >= 1,
      { timeoutMs: 120_000, everyMs: 500, detail: tail('kubelet') },
    );
    log(`CoreDNS ready (${since()})`);
    if (kubeRouter) {
      // Healthy once its first full sync has written the policy chains (it started beside CoreDNS).
      const healthz = `http://127.0.0.1:${NETPOL_HEALTH_PORT}/healthz`;
      await eventually('kube-router\'s network policy controller', async () => (await node.exec('curl', ['-sf', '--max-time', '2', healthz])).trim() === 'OK', {
        timeoutMs: 60_000,
        everyMs: 500,
        detail: tail('kube-router'),
      });
      log(`NetworkPolicy enforced by kube-router's controller (${since()})`);
    }

    return {
      name: NODE_NAME,
      nodeIp: LINK.node,
      dir,
      cgroupRoot,
      command: (file: string, args: string[]) => node.command(file, args),
      daemon,
      exec: (file: string, args: string[]) => node.exec(file, args),
      ctr,
      async importImage(tarPath: string) {
        const output = await ctr(['images', 'import', path.resolve(tarPath)]);
        const references: string[] = [];
        // ctr prints "unpacking <name> (sha256:<digest>)...done" per image.
        for (const [, name, digest] of output.matchAll(/unpacking (\S+) \((sha256:[0-9a-f]{64})\)/g)) {
          const byDigest = `${name.replace(/:[^:/]+$/, '')}@${digest}`;
          await ctr(['images', 'tag', '--force', name, byDigest]);
          references.push(name, byDigest);
        }
        if (references.length === 0) throw new Error(`ctr imported no image from ${tarPath}: ${output.trim()}`);
        return references;
      },
      stop,
    };
  } catch (error) {
    await stop().catch((cleanup: Error) => log(`clean-up after the failed start: ${cleanup.message}`));
    throw error;
  }
}

/** The local control plane with this real node in place of kwok's fake one. */
export async function startNodeCluster(log: (line: string) => void = console.log, options: NodeOptions = {}): Promise<{ plane: ControlPlane; node: LocalNode; stop(): Promise<void> }> {
  const plan = prepareNode();
  let plane: ControlPlane | undefined;
  try {
    plane = await startControlPlane(log, plan.controlPlane);
    const node = await startNode(plane, plan, log, options);
    const cluster = plane;
    return {
      plane,
      node,
      async stop() {
        try {
          await node.stop();
        } finally {
          await cluster.stop();
        }
      },
    };
  } catch (error) {
    await plane?.stop();
    rmSync(plan.dir, { recursive: true, force: true });
    throw error;
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
