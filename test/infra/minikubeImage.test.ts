import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { minikubeImageProvider, type MinikubeImageInputs, type MinikubeImageOutputs } from '../../components/minikubeImage';

/**
 * The image's lifecycle against a stub `minikube` on PATH that records every call (arguments and the
 * Docker variables it saw) and answers from files the test writes: the profiles, the node's images.
 */
describe('MinikubeImage: building inside the node, for any container runtime', () => {
  let dir: string;
  let savedPath: string | undefined;
  const calls = () =>
    readFileSync(path.join(dir, 'calls'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { args: string[]; dockerHost: string; activeDockerd: string });
  const profiles = (valid: Array<{ Name: string; Status: string; runtime?: string }>) =>
    writeFileSync(
      path.join(dir, 'profiles.json'),
      JSON.stringify({ invalid: [], valid: valid.map((p) => ({ Name: p.Name, Status: p.Status, Config: { KubernetesConfig: { ContainerRuntime: p.runtime ?? '' } } })) }),
    );
  const nodeImages = (refs: string[]) => writeFileSync(path.join(dir, 'images'), refs.join('\n') + '\n');
  const inputs: MinikubeImageInputs = { profile: 'dev', imageName: 'data-service:0123456789abcdef', contextDir: '/src/service' };

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'stub-minikube-'));
    writeFileSync(path.join(dir, 'calls'), '');
    writeFileSync(
      path.join(dir, 'minikube'),
      `#!/usr/bin/env node
const fs = require('fs'); const dir = ${JSON.stringify(dir)}; const args = process.argv.slice(2);
fs.appendFileSync(dir + '/calls', JSON.stringify({ args, dockerHost: process.env.DOCKER_HOST || '', activeDockerd: process.env.MINIKUBE_ACTIVE_DOCKERD || '' }) + '\\n');
const rest = args[0] === '-p' ? args.slice(2) : args;
if (rest[0] === 'profile') { process.stdout.write(fs.readFileSync(dir + '/profiles.json', 'utf8')); process.exit(0); }
// minikube's image commands visit Running nodes only (cache_images.go): a stopped profile lists nothing, exit 0.
const profile = args[0] === '-p' ? args[1] : 'minikube';
const stopped = fs.existsSync(dir + '/profiles.json') && JSON.parse(fs.readFileSync(dir + '/profiles.json', 'utf8')).valid.some((p) => p.Name === profile && p.Status === 'Stopped');
const images = () => (stopped ? [] : fs.readFileSync(dir + '/images', 'utf8').split('\\n').filter(Boolean));
// dockerref.ParseNormalizedNamed, as machine.BuildImage applies it to the tag.
const normalized = (ref) => { const [first, ...rest] = ref.split('/'); if (!rest.length) return 'docker.io/library/' + ref; return /[.:]/.test(first) || first === 'localhost' ? ref : 'docker.io/' + ref; };
if (rest[0] === 'image' && rest[1] === 'ls' && rest.includes('json')) { const shared = fs.existsSync(dir + '/shared') ? fs.readFileSync(dir + '/shared', 'utf8').split('\\n').filter(Boolean) : []; process.stdout.write(JSON.stringify(images().map((ref) => ({ id: ref, repoDigests: [], repoTags: shared.includes(ref) ? shared : [ref], size: '1' })))); process.exit(0); }
if (rest[0] === 'image' && rest[1] === 'ls') { process.stdout.write(images().join('\\n') + '\\n'); process.exit(0); }
if (rest[0] === 'image' && rest[1] === 'build') {
  if (fs.existsSync(dir + '/fail-build')) { console.error('ERROR: failed to solve: npm ci exited 1'); process.exit(1); }
  // minikube's own quirk: a build that fails on the node is logged, and the command exits 0.
  if (fs.existsSync(dir + '/fail-build-exit-0')) { console.error('error TS2322: Type \\'string\\' is not assignable to type \\'number\\'.'); process.exit(0); }
  fs.appendFileSync(dir + '/images', normalized(rest[rest.indexOf('-t') + 1]) + '\\n'); process.exit(0);
}
if (rest[0] === 'image' && rest[1] === 'rm') {
  if (fs.existsSync(dir + '/fail-rm')) { console.error('image is in use'); process.exit(1); }
  // docker rmi refuses an image a container uses; minikube warns and exits 0. The file counts the refusals left.
  const refusals = fs.existsSync(dir + '/refuse-rm') ? Number(fs.readFileSync(dir + '/refuse-rm', 'utf8')) : 0;
  if (refusals > 0) { fs.writeFileSync(dir + '/refuse-rm', String(refusals - 1)); console.error('❗  Failed to remove images for profile dev error removing images: conflict: unable to remove repository reference'); process.exit(0); }
  fs.writeFileSync(dir + '/images', images().filter((ref) => ref !== normalized(rest[2])).join('\\n') + '\\n'); process.exit(0);
}
console.error('stub minikube: unexpected ' + args.join(' ')); process.exit(2);
`,
    );
    chmodSync(path.join(dir, 'minikube'), 0o755);
    nodeImages([]);
    savedPath = process.env.PATH;
    process.env.PATH = `${dir}${path.delimiter}${savedPath}`;
  });

  afterEach(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  describe('check, at preview, before any change', () => {
    for (const runtime of ['docker', 'containerd', 'cri-o']) {
      it(`accepts a running profile with the ${runtime} runtime`, async () => {
        profiles([{ Name: 'dev', Status: 'Running', runtime }]);
        const result = await minikubeImageProvider.check!({} as MinikubeImageInputs, inputs);
        assert.deepEqual(result.failures ?? [], []);
      });
    }

    it('names the fix for a profile that does not exist, is stopped, or cannot build', async () => {
      profiles([{ Name: 'minikube', Status: 'Running' }]);
      let result = await minikubeImageProvider.check!({} as MinikubeImageInputs, inputs);
      assert.match(result.failures![0].reason, /profile "dev" does not exist \(profiles: minikube\): run `minikube start -p dev`, or set `pulumi config set minikubeProfile/);
      profiles([{ Name: 'dev', Status: 'Stopped', runtime: 'containerd' }]);
      result = await minikubeImageProvider.check!({} as MinikubeImageInputs, inputs);
      assert.match(result.failures![0].reason, /"dev" is Stopped: run `minikube start -p dev`/);
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'rkt' }]);
      result = await minikubeImageProvider.check!({} as MinikubeImageInputs, inputs);
      assert.match(result.failures![0].reason, /cannot build images for container runtime "rkt".*--container-runtime=containerd/);
    });

    it('says minikube is missing when it is not on PATH', async () => {
      process.env.PATH = '/nonexistent';
      const result = await minikubeImageProvider.check!({} as MinikubeImageInputs, inputs);
      assert.match(result.failures![0].reason, /minikube is not installed/);
    });
  });

  describe('create', () => {
    it('builds in the profile\'s node on every node, tagged by content, ignoring a stale docker-env', async () => {
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'containerd' }]);
      process.env.DOCKER_HOST = 'tcp://127.0.0.1:32771';
      process.env.MINIKUBE_ACTIVE_DOCKERD = 'old-profile';
      try {
        const result = await minikubeImageProvider.create(inputs);
        assert.equal(result.id, 'dev/data-service:0123456789abcdef');
        assert.equal((result.outs as MinikubeImageOutputs).runtime, 'containerd');
      } finally {
        delete process.env.DOCKER_HOST;
        delete process.env.MINIKUBE_ACTIVE_DOCKERD;
      }
      const build = calls().find((call) => call.args.includes('build'))!;
      // -f: minikube sends the Dockerfile only when .dockerignore lets it through or -f names it (CreateTarStream).
      assert.deepEqual(build.args, ['-p', 'dev', 'image', 'build', '--all', '-f', 'Dockerfile', '-t', 'data-service:0123456789abcdef', '/src/service']);
      for (const call of calls()) {
        assert.equal(call.dockerHost, '', 'no docker-env DOCKER_HOST reaches minikube');
        assert.equal(call.activeDockerd, '', 'no MINIKUBE_ACTIVE_DOCKERD reaches minikube');
      }
    });

    it('keeps your own DOCKER_HOST (rootless Docker, colima): minikube\'s docker driver needs it', async () => {
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'docker' }]);
      process.env.DOCKER_HOST = 'unix:///run/user/1000/docker.sock';
      try {
        await minikubeImageProvider.create(inputs);
      } finally {
        delete process.env.DOCKER_HOST;
      }
      for (const call of calls()) assert.equal(call.dockerHost, 'unix:///run/user/1000/docker.sock');
    });

    it('fails with the builder\'s own output', async () => {
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'docker' }]);
      writeFileSync(path.join(dir, 'fail-build'), '');
      await assert.rejects(minikubeImageProvider.create(inputs), /minikube image build of data-service:0123456789abcdef failed[\s\S]*npm ci exited 1/);
    });

    it('fails when minikube exits 0 but the node has no image (minikube logs a failed build and exits 0), naming the builder\'s error', async () => {
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'containerd' }]);
      writeFileSync(path.join(dir, 'fail-build-exit-0'), '');
      await assert.rejects(minikubeImageProvider.create(inputs), /failed: minikube exited 0, but the node has no such image[\s\S]*TS2322/);
    });

    it('asks whether the profile runs at check only: create and update read its runtime with --light', async () => {
      // minikube's --light reports every profile as "Skipped" without inspecting its machine (seconds).
      profiles([{ Name: 'dev', Status: 'Skipped', runtime: 'containerd' }]);
      const result = await minikubeImageProvider.create(inputs);
      assert.equal((result.outs as MinikubeImageOutputs).runtime, 'containerd');
      const listings = calls().filter((call) => call.args[0] === 'profile');
      assert.deepEqual(listings.map((call) => call.args), [['profile', 'list', '-o', 'json', '--light']]);
      profiles([{ Name: 'dev', Status: 'Stopped', runtime: 'containerd' }]);
      const checked = await minikubeImageProvider.check!(inputs, inputs);
      assert.match(checked.failures?.[0]?.reason ?? '', /is Stopped: run `minikube start -p dev`/, 'check asks in full');
      assert.deepEqual(calls().filter((call) => call.args[0] === 'profile').at(-1)!.args, ['profile', 'list', '-o', 'json']);
    });

    it('an imageRepository with a user part (me/data-service) is recognised once built (docker.io/me/…), and removed', async () => {
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'containerd' }]);
      const mine = { ...inputs, imageName: 'me/data-service:0123456789abcdef' };
      const result = await minikubeImageProvider.create(mine);
      assert.equal(result.id, 'dev/me/data-service:0123456789abcdef');
      assert.match(readFileSync(path.join(dir, 'images'), 'utf8'), /^docker\.io\/me\/data-service:0123456789abcdef$/m);
      const diff = await minikubeImageProvider.diff!('id', result.outs as MinikubeImageOutputs, mine);
      assert.equal(diff.changes, false, 'the node has it: nothing to rebuild');
      await minikubeImageProvider.delete!('id', result.outs as MinikubeImageOutputs);
      assert.deepEqual(calls().map((call) => call.args).filter((args) => args.includes('rm')), [['-p', 'dev', 'image', 'rm', 'me/data-service:0123456789abcdef']]);
      assert.doesNotMatch(readFileSync(path.join(dir, 'images'), 'utf8'), /data-service/, 'gone from the node');
    });

    it('accepts the serving statuses of an HA profile (HAppy, Degraded) at check', async () => {
      for (const status of ['HAppy', 'Degraded']) {
        profiles([{ Name: 'dev', Status: status, runtime: 'containerd' }]);
        const result = await minikubeImageProvider.check!({} as MinikubeImageInputs, inputs);
        assert.deepEqual(result.failures ?? [], [], status);
      }
    });
  });

  describe('diff: the image follows the node', () => {
    const olds: MinikubeImageOutputs = { ...inputs, runtime: 'docker' };

    it('nothing to do while the node has the image', async () => {
      nodeImages(['docker.io/library/data-service:0123456789abcdef', 'registry.k8s.io/pause:3.10']);
      const diff = await minikubeImageProvider.diff!('id', olds, inputs);
      assert.equal(diff.changes, false);
    });

    it('the node lost it (pruned images, a new cluster after minikube delete + start): rebuilt IN PLACE, so no delete removes the same tag afterwards', async () => {
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'containerd' }]);
      nodeImages(['registry.k8s.io/pause:3.10']);
      const diff = await minikubeImageProvider.diff!('id', olds, inputs);
      assert.equal(diff.changes, true);
      assert.deepEqual(diff.replaces, [], 'an update, not a replacement: a replacement\'s delete would `image rm` the tag just rebuilt');
      await minikubeImageProvider.update!('id', olds, inputs);
      assert.deepEqual(calls().filter((call) => call.args.includes('build') || call.args.includes('rm')).map((call) => call.args[3]), ['build']);
      assert.match(readFileSync(path.join(dir, 'images'), 'utf8'), /data-service:0123456789abcdef/);
    });

    it('a stopped profile\'s empty listing is not "the image is gone": diff and refresh keep it', async () => {
      // minikube image ls on a stopped profile prints nothing and exits 0 (ListImages skips nodes not Running).
      profiles([{ Name: 'dev', Status: 'Stopped', runtime: 'containerd' }]);
      nodeImages(['docker.io/library/data-service:0123456789abcdef']);
      const diff = await minikubeImageProvider.diff!('id', olds, inputs);
      assert.equal(diff.changes, false, 'no rebuild planned from a stopped node\'s silence');
      const read = await minikubeImageProvider.read!('dev/data-service:0123456789abcdef', olds);
      assert.equal(read.id, 'dev/data-service:0123456789abcdef', 'refresh keeps the image in the state');
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'containerd' }]);
      nodeImages([]);
      assert.deepEqual(await minikubeImageProvider.read!('dev/data-service:0123456789abcdef', olds), {}, 'a running node without it: gone');
    });

    it('a new tag or another profile is another image: replaced (the old one deleted after)', async () => {
      nodeImages(['docker.io/library/data-service:0123456789abcdef']);
      for (const [key, value] of [['imageName', 'data-service:fedcba9876543210'], ['profile', 'other']] as const) {
        const diff = await minikubeImageProvider.diff!('id', olds, { ...inputs, [key]: value });
        assert.equal(diff.changes, true, key);
        assert.deepEqual(diff.replaces, [key]);
        assert.equal(diff.deleteBeforeReplace, false, 'the old image serves until the new one has rolled out');
      }
    });

    it('a moved checkout alone: an update that builds nothing', async () => {
      nodeImages(['docker.io/library/data-service:0123456789abcdef']);
      const news = { ...inputs, contextDir: '/elsewhere/service' };
      const diff = await minikubeImageProvider.diff!('id', olds, news);
      assert.deepEqual([diff.changes, diff.replaces], [true, []]);
      await minikubeImageProvider.update!('id', olds, news);
      assert.ok(!calls().some((call) => call.args.includes('build')));
    });
  });

  describe('in the dynamic provider\'s own process, serialized as Pulumi serializes it', () => {
    it('check, create, diff and delete work from TypeScript\'s CommonJS output (as ts-node compiles the program)', async function () {
      this.timeout(60_000);
      // The stubs above call the provider in this process; `pulumi up` runs a serialized copy of it, whose
      // captured variables are whatever TypeScript's emit referenced (`exports.x` for an exported const).
      const root = path.resolve(__dirname, '..', '..');
      const source = readFileSync(path.join(root, 'components', 'minikubeImage.ts'), 'utf8');
      const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
      const moduleDir = path.join(dir, 'compiled');
      execFileSync('mkdir', ['-p', moduleDir]);
      symlinkSync(path.join(root, 'node_modules'), path.join(moduleDir, 'node_modules'));
      writeFileSync(path.join(moduleDir, 'minikubeImage.js'), js);
      // Loaded and serialized by plain node, as the program's compiled module is (no test-time loader hooks).
      const serialize = `require('@pulumi/pulumi').runtime.serializeFunction(() => require('./minikubeImage.js').minikubeImageProvider, { allowSecrets: true })
        .then((sf) => require('fs').writeFileSync('provider.js', sf.text))`;
      execFileSync(process.execPath, ['-e', serialize], { cwd: moduleDir });
      profiles([{ Name: 'dev', Status: 'Running', runtime: 'containerd' }]);
      const script = `
        const provider = require(${JSON.stringify(path.join(moduleDir, 'provider.js'))}).handler();
        (async () => {
          const inputs = ${JSON.stringify(inputs)};
          const check = await provider.check({}, inputs);
          const created = await provider.create(inputs);
          const diff = await provider.diff(created.id, created.outs, inputs);
          await provider.delete(created.id, created.outs);
          console.log(JSON.stringify({ check, created, diff }));
        })().catch((error) => { console.error(error.stack); process.exit(1); });`;
      const result = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: process.env })) as { check: { failures?: unknown[] }; created: { id: string }; diff: { changes: boolean } };
      assert.deepEqual(result.check.failures ?? [], []);
      assert.equal(result.created.id, 'dev/data-service:0123456789abcdef');
      assert.equal(result.diff.changes, false);
      assert.deepEqual(calls().map((call) => call.args[3] ?? call.args[0]).filter((word) => word === 'build' || word === 'rm'), ['build', 'rm']);
    });
  });

  describe('delete', () => {
    it('removes the tag from the node, so replaced images do not pile up', async () => {
      nodeImages(['docker.io/library/data-service:0123456789abcdef']);
      await minikubeImageProvider.delete!('id', { ...inputs, runtime: 'docker' });
      assert.deepEqual(calls().map((call) => call.args).filter((args) => args.includes('rm')), [['-p', 'dev', 'image', 'rm', 'data-service:0123456789abcdef']]);
      assert.doesNotMatch(readFileSync(path.join(dir, 'images'), 'utf8'), /data-service/, 'gone from the node');
    });

    it('keeps an image that another tag also names (CRI removes an image with all its tags)', async () => {
      nodeImages(['docker.io/library/data-service:0123456789abcdef']);
      writeFileSync(path.join(dir, 'shared'), 'docker.io/library/data-service:0123456789abcdef\ndocker.io/library/data-service:fedcba9876543210\n');
      await minikubeImageProvider.delete!('id', { ...inputs, runtime: 'docker' });
      assert.ok(!calls().some((call) => call.args.includes('rm')), 'no image rm');
    });

    it('docker runtime: an image a draining pod still uses is refused (minikube only warns), so delete tries again until it is gone', async function () {
      this.timeout(20_000);
      nodeImages(['docker.io/library/data-service:0123456789abcdef']);
      writeFileSync(path.join(dir, 'refuse-rm'), '2');
      await minikubeImageProvider.delete!('id', { ...inputs, runtime: 'docker' });
      assert.equal(calls().filter((call) => call.args.includes('rm')).length, 3, 'refused twice, removed the third time');
      assert.doesNotMatch(readFileSync(path.join(dir, 'images'), 'utf8'), /data-service/);
    });

    it('does not fail a destroy when the node is gone or the image is still in use', async () => {
      writeFileSync(path.join(dir, 'fail-rm'), '');
      await minikubeImageProvider.delete!('id', { ...inputs, runtime: 'docker' });
    });
  });
});
