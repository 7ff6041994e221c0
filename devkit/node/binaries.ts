/**
 * The node's Go programs, built once per machine from the Go module proxy into
 * ~/.cache/koa-mongodb, keyed by a hash of their wrapper module's files:
 *  - tools/kube-node: kubelet and kube-proxy v1.34.4, the same k8s.io/kubernetes
 *    wrapper and version stamp as the control plane's (tools/kube). A module of its
 *    own so that adding them does not change tools/kube's hash, which would rebuild
 *    the control plane on every machine for nothing; the Go build cache still shares
 *    every compiled package the two have in common.
 *  - tools/coredns (CoreDNS v1.12.1), tools/metrics-server (v0.8.0): the addons,
 *    run as pods from scratch images made here (see images.ts).
 *  - tools/node-images: pause (the pod sandbox) and nettool (the smoke test's image).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { hashTree } from '../../scripts/lib/cache';
import { KUBE_VERSION } from '../../scripts/lib/control-plane';
import { CACHE_DIR, REPO_ROOT } from '../../scripts/lib/ferretdb';

export interface NodeBinaries {
  kubelet: string;
  kubeProxy: string;
  coredns: string;
  metricsServer: string;
  pause: string;
  nettool: string;
}

/** `go build` of `packages` in tools/<tool>, unless every binary in `names` is in the cache already. */
function build(tool: string, packages: string[], names: string[], ldflags: string, log: (line: string) => void): string {
  const dir = path.join(REPO_ROOT, 'tools', tool);
  const out = path.join(CACHE_DIR, `${tool}-${hashTree([dir])}`);
  if (names.every((name) => existsSync(path.join(out, name)))) return out;
  mkdirSync(out, { recursive: true });
  log(`building ${packages.join(', ')} (tools/${tool}) from the Go module proxy into ${out}…`);
  const started = Date.now();
  // Static binaries: the addons and the pause binary go into scratch images with no libc.
  const result = spawnSync('go', ['build', '-trimpath', '-ldflags', ldflags, '-o', out + path.sep, ...packages], { cwd: dir, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
  if (result.status !== 0) throw new Error(`go build in tools/${tool} failed (exit ${result.status})`);
  log(`built tools/${tool} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return out;
}

/** Builds what is missing (cold: several minutes per module) and returns the binaries' paths. */
export function ensureNodeBinaries(log: (line: string) => void = console.log): NodeBinaries {
  const minor = KUBE_VERSION.split('.')[1];
  const stamp = `-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}`;
  const small = build('node-images', ['./pause', './nettool'], ['pause', 'nettool'], '-s -w', log);
  const kube = build('kube-node', ['./kubelet', './kube-proxy'], ['kubelet', 'kube-proxy'], stamp, log);
  const coredns = build('coredns', ['.'], ['coredns'], '-s -w', log);
  const metrics = build('metrics-server', ['.'], ['metrics-server'], '-s -w', log);
  return {
    kubelet: path.join(kube, 'kubelet'),
    kubeProxy: path.join(kube, 'kube-proxy'),
    coredns: path.join(coredns, 'coredns'),
    metricsServer: path.join(metrics, 'metrics-server'),
    pause: path.join(small, 'pause'),
    nettool: path.join(small, 'nettool'),
  };
}
