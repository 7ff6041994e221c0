/**
 * The node's Go programs, built once per machine from the Go module proxy into
 * ~/.cache/koa-mongodb, keyed by a hash of their wrapper module's files:
 *  - devkit/go/kube-node: kubelet and kube-proxy v1.34.4, the same k8s.io/kubernetes
 *    wrapper and version stamp as the control plane's (devkit/go/kube). A module of its
 *    own so that adding them does not change devkit/go/kube's hash, which would rebuild
 *    the control plane on every machine for nothing; the Go build cache still shares
 *    every compiled package the two have in common.
 *  - devkit/go/coredns (CoreDNS v1.12.1), devkit/go/metrics-server (v0.8.0): the addons,
 *    run as pods from scratch images made here (see images.ts).
 *  - devkit/go/node-images: pause (the pod sandbox) and nettool (the smoke test's image).
 */
import path from 'node:path';
import { KUBE_VERSION } from '../control-plane';
import { ensureGoTool } from '../go-build';
import { GO_MODULES, cacheEntry } from '../paths';

export interface NodeBinaries {
  kubelet: string;
  kubeProxy: string;
  coredns: string;
  metricsServer: string;
  pause: string;
  nettool: string;
}

/** The wing's one Go build helper, for a module of devkit/go; returns the cache directory holding `names`. */
function build(tool: string, packages: string[], names: string[], ldflags: string, log: (line: string) => void): string {
  const dir = cacheEntry(tool, [tool]);
  // Static binaries (CGO off in ensureGoTool): the addons and the pause binary go into scratch images with no libc.
  ensureGoTool({ what: `${packages.join(', ')} (devkit/go/${tool})`, firstBuild: 'several minutes', into: { dir, names }, build: { cwd: path.join(GO_MODULES, tool), packages, ldflags } }, log);
  return dir;
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
