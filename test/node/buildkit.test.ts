/**
 * Minikube's containerd-runtime build path on the real node (devkit/minikube-standin/buildkit.ts):
 * buildkitd in the node's namespaces (containerd worker, k8s.io), `buildctl build` with minikube's argv.
 * The image lands in the node's containerd where the kubelet finds it (no save, no import), a pod runs
 * from it, a broken Dockerfile fails with BuildKit's own error text, and a rebuild after a one-file change
 * is timed (printed, not asserted). Needs root; one node per machine:
 *
 *   flock /tmp/koa-node.lock npx mocha --require tsx/cjs --timeout 3600000 test/node/buildkit.test.ts
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureBaseImage } from '../../devkit/images';
import { KubeClient } from '../../devkit/kube';
import { BuildctlError, buildctlArgs, buildctlBuild, hasImage, standInBuildOpts, startBuildkitd, type BuildOutput } from '../../devkit/minikube-standin/buildkit';
import { startNodeCluster, type LocalNode } from '../../devkit/node/node';
import { sweepStaleNodes } from '../../devkit/node/teardown';
import { REPO_ROOT } from '../../devkit/paths';
import { eventually } from '../../devkit/wait';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NS = 'buildkit-smoke';

/** A one-dependency project: `npm ci` fetches ms 2.1.3 from the npm registry (through the egress proxy). */
const PACKAGE_JSON = { name: 'buildkit-smoke', version: '1.0.0', private: true, dependencies: { ms: '2.1.3' } };
const PACKAGE_LOCK = {
  name: 'buildkit-smoke',
  version: '1.0.0',
  lockfileVersion: 3,
  requires: true,
  packages: {
    '': { name: 'buildkit-smoke', version: '1.0.0', dependencies: { ms: '2.1.3' } },
    'node_modules/ms': {
      version: '2.1.3',
      resolved: 'https://registry.npmjs.org/ms/-/ms-2.1.3.tgz',
      integrity: 'sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==',
      license: 'MIT',
    },
  },
};
const DOCKERFILE = `ARG NODE_IMAGE
FROM \${NODE_IMAGE}
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY hello.js ./
CMD ["node", "hello.js"]
`;
const hello = (greeting: string) => `console.log('${greeting}', require('ms')(2 * 60 * 60 * 1000));\n`;

describe('BuildKit in the node, driven as minikube drives it (containerd runtime)', function () {
  this.timeout(30 * 60_000);
  let cluster: Awaited<ReturnType<typeof startNodeCluster>>;
  let node: LocalNode;
  let api: KubeClient;
  let opts: string[];
  let context: string;
  const figures: Record<string, string> = {};
  const hostHadBuildkitCgroup = existsSync('/sys/fs/cgroup/memory/buildkit');
  const output = (): BuildOutput & { text: string } => {
    const out = {
      text: '',
      stdout: (text: string) => void (out.text += text),
      stderr: (text: string) => void (out.text += text),
    };
    return out;
  };
  const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

  const call = async (method: string, url: string, body?: unknown, expect = [200, 201]) => {
    const res = await api.request(method, url, body);
    if (!expect.includes(res.status)) throw new Error(`${method} ${url}: ${res.status} ${res.body.message ?? ''}`);
    return res.body as Manifest;
  };

  /** Runs `image` as a pod to completion and returns its log. */
  const runPod = async (name: string, image: string) => {
    await call('POST', `/api/v1/namespaces/${NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: { restartPolicy: 'Never', containers: [{ name: 'app', image, imagePullPolicy: 'Never' }] },
    });
    const done = await eventually(
      `pod ${name} to finish`,
      async () => {
        const pod = await call('GET', `/api/v1/namespaces/${NS}/pods/${name}`);
        return ['Succeeded', 'Failed'].includes(pod.status.phase) && pod;
      },
      { timeoutMs: 120_000, everyMs: 500 },
    );
    const log = (await api.request('GET', `/api/v1/namespaces/${NS}/pods/${name}/log`)).body.message as string;
    assert.equal(done.status.phase, 'Succeeded', `pod ${name}: ${JSON.stringify(done.status.containerStatuses?.[0]?.state)} ${log}`);
    return { log, imageID: done.status.containerStatuses[0].imageID as string };
  };

  before(async function () {
    assert.equal(process.getuid?.(), 0, 'the node needs root');
    await sweepStaleNodes((line) => console.log(`      ${line}`));
    const base = await ensureBaseImage({ log: (line) => console.log(`      ${line}`) });
    let started = Date.now();
    cluster = await startNodeCluster((line) => console.log(`      ${line}`));
    node = cluster.node;
    api = KubeClient.fromKubeconfig(cluster.plane.kubeconfig);
    figures['cluster with a real node up'] = `${seconds(started)} s`;
    started = Date.now();
    await node.importImage(base.archive);
    figures['base image imported into the node'] = `${seconds(started)} s`;
    started = Date.now();
    await startBuildkitd(node, (line) => console.log(`      ${line}`));
    figures['buildkitd started in the node (warm binaries)'] = `${seconds(started)} s`;
    opts = standInBuildOpts(base.ref);
    context = path.join(node.dir, 'smoke-context');
    mkdirSync(context);
    writeFileSync(path.join(context, 'Dockerfile'), DOCKERFILE);
    writeFileSync(path.join(context, 'package.json'), `${JSON.stringify(PACKAGE_JSON, null, 2)}\n`);
    writeFileSync(path.join(context, 'package-lock.json'), `${JSON.stringify(PACKAGE_LOCK, null, 2)}\n`);
    writeFileSync(path.join(context, 'hello.js'), hello('hello'));
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });

  after(async () => {
    for (const [what, figure] of Object.entries(figures)) console.log(`      ${what}: ${figure}`);
    await cluster?.stop();
  });

  it("passes minikube's argv to buildctl (containerd.go BuildImage), the stand-in's opts as --build-opt values", () => {
    assert.deepEqual(buildctlArgs('/ctx', 'docker.io/library/app:1', ['opt=build-arg:A=b', 'no-cache']), [
      'build', '--frontend', 'dockerfile.v0', '--local', 'context=/ctx', '--local', 'dockerfile=/ctx', '--output', 'type=image,name=docker.io/library/app:1', '--opt=build-arg:A=b', '--no-cache',
    ]);
    assert.equal(buildctlArgs('/ctx', 'app')[8], 'type=image,name=app:latest');
    assert.equal(buildctlArgs('/ctx', '')[8], 'type=image');
  });

  it('builds FROM the base in the node\'s store, RUN npm ci through the egress proxy, COPY; the kubelet runs it', async () => {
    const reference = 'docker.io/library/buildkit-smoke:1';
    const out = output();
    const started = Date.now();
    await buildctlBuild(node, { dir: context, reference, opts, out });
    figures['first build (npm ci of one package)'] = `${seconds(started)} s`;
    assert.match(out.text, /RUN npm ci/);
    assert.match(out.text, /added 1 package/);
    assert.match(out.text, /naming to docker\.io\/library\/buildkit-smoke:1/);
    assert.ok(await hasImage(node, reference), `ctr -n k8s.io images ls lists ${reference}`);
    const listed = await node.ctr(['images', 'ls']);
    assert.match(listed, /^docker\.io\/library\/buildkit-smoke:1\s/m);
    // The pod names it as a user would (a short name: docker.io/library/ is implied).
    const { log } = await runPod('smoke-1', 'buildkit-smoke:1');
    assert.equal(log.trim(), 'hello 2h');
  });

  it("fails a broken Dockerfile with BuildKit's own error text", async () => {
    const broken = path.join(node.dir, 'broken-context');
    mkdirSync(broken);
    writeFileSync(path.join(broken, 'Dockerfile'), 'ARG NODE_IMAGE\nFROM ${NODE_IMAGE}\nRUN echo about to fail && exit 3\n');
    const error = await buildctlBuild(node, { dir: broken, reference: 'docker.io/library/buildkit-broken:1', opts, out: output() }).then(
      () => assert.fail('the broken build succeeded'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof BuildctlError, String(error));
    assert.match(error.message, /^error: failed to solve: process "\/bin\/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3/);
    assert.equal(error.code, 1);
    assert.equal(await hasImage(node, 'docker.io/library/buildkit-broken:1'), false);

    writeFileSync(path.join(broken, 'Dockerfile'), 'FRM scratch\n');
    const parse = await buildctlBuild(node, { dir: broken, reference: 'docker.io/library/buildkit-broken:2', opts, out: output() }).then(
      () => assert.fail('the unparsable build succeeded'),
      (caught: Error) => caught,
    );
    assert.match(parse.message, /^error: failed to solve: dockerfile parse error on line 1: unknown instruction: FRM/);
  });

  it('rebuilds after a one-file change (timed), reusing the npm ci layer', async () => {
    writeFileSync(path.join(context, 'hello.js'), hello('hello again'));
    const out = output();
    const started = Date.now();
    await buildctlBuild(node, { dir: context, reference: 'docker.io/library/buildkit-smoke:2', opts, out });
    const taken = seconds(started);
    figures['rebuild after a one-file change'] = `${taken} s`;
    console.log(`      rebuild after a one-file change: ${taken} s`);
    assert.match(out.text, /RUN npm ci[^\n]*\n#\d+ CACHED/);
    const { log } = await runPod('smoke-2', 'buildkit-smoke:2');
    assert.equal(log.trim(), 'hello again 2h');
  });

  it("builds the service's own Dockerfile (service/) the way the stand-in's `image build` will", async () => {
    const reference = 'docker.io/library/data-service:buildkit-smoke';
    const started = Date.now();
    await buildctlBuild(node, { dir: path.join(REPO_ROOT, 'service'), reference, opts, out: output() });
    figures['service/ image build (cold BuildKit cache)'] = `${seconds(started)} s`;
    assert.ok(await hasImage(node, reference));
  });

  it('stops with the node and leaves nothing of BuildKit behind', async () => {
    const dir = node.dir;
    const cgroupRoot = node.cgroupRoot;
    await cluster.stop();
    for (const hierarchy of ['cpu', 'memory', 'pids', 'freezer']) assert.equal(existsSync(`/sys/fs/cgroup/${hierarchy}${cgroupRoot}`), false);
    assert.equal(existsSync('/sys/fs/cgroup/memory/buildkit'), hostHadBuildkitCgroup, 'no /buildkit cgroup made on the host');
    const leftovers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(dir) || /buildkitd|buildctl/.test(line));
    assert.deepEqual(leftovers, []);
  });
});
