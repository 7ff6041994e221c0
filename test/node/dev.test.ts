/**
 * `npm run dev` on the real node, as a user runs it in a terminal: the minikube STAND-IN first on
 * PATH (devkit/minikube-standin), the real Pulumi CLI and engine, the default imageMode (the image
 * built in the node by `minikube image build`), a project-local backend, the passphrase in the
 * environment. In a copy of the project (test/node/user-project.ts: a real copy of service/, never
 * the repository's own), the test saves one-line changes to a response while steady load runs
 * through the forwarded port, and checks:
 * - the change is served through 127.0.0.1:DEV_PORT with no failed request during the swap;
 * - saves made while an update runs make one next update;
 * - the pods' logs are streamed, prettified, with the pod named;
 * - Ctrl-C (SIGINT to the process group, as a terminal sends it) leaves the stack running and
 *   nothing behind: no process of the session, no temp file, the port closed.
 * The figure from save to first new answer is printed (dev's own and the load's view), not asserted.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { KubeClient, type Manifest } from '../../devkit/kube';
import type { MinikubeStandIn } from '../../devkit/minikube-standin';
import { scratchDir } from '../../devkit/scratch';
import { eventually } from '../../devkit/wait';
import { steadyLoad } from './steady-load';
import { userWithMinikube, type UserProject } from './user-project';

const NAMESPACE = 'koa-mongodb';
const log = (line: string) => console.log(`      ${line}`);
const isReady = (pod: Manifest) => pod.status?.phase === 'Running' && pod.status?.conditions?.some((c: Manifest) => c.type === 'Ready' && c.status === 'True');

/** A pod's log line as dev shows it: `01:02:03.456 INFO  7d9f8c6b5-x2k4q │ …`. */
const POD_LINE = /^\d\d:\d\d:\d\d\.\d{3} .{5} \S+ │/;

/** GET on a connection of its own (no keep-alive), as a fresh `curl` makes it. */
const freshGet = (url: string) =>
  new Promise<string>((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

/** Processes whose environment carries `marker`: every process the dev session started, however deep. */
function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) {
        found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim()}`);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** `npm run dev` in its own process group (a terminal's foreground job), its output kept and watched. */
class DevSession {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  private waiters: Array<{ pattern: RegExp; from: number; resolve: (line: string) => void }> = [];

  constructor(user: UserProject, env: NodeJS.ProcessEnv) {
    this.child = spawn('npm', ['run', 'dev'], { cwd: user.dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    const take = (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.line(line);
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  }

  private line(line: string): void {
    this.lines.push(line);
    // Everything but the pods' log lines (steady load makes many): dev's, npm run up's and pulumi's.
    if (!POD_LINE.test(line)) log(`│ ${line}`);
    this.waiters = this.waiters.filter((waiter) => {
      if (this.lines.length - 1 >= waiter.from && waiter.pattern.test(line)) {
        waiter.resolve(line);
        return false;
      }
      return true;
    });
  }

  /** The first line matching `pattern` from line index `from` on (default: from now); fails at once if dev ends first. */
  waitFor(pattern: RegExp, timeoutMs: number, from = this.lines.length): Promise<string> {
    const already = this.lines.slice(from).find((line) => pattern.test(line));
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`no line matching ${pattern}: ${why}; last lines:\n${this.lines.slice(-40).join('\n')}`));
      const timer = setTimeout(() => fail(`not in ${timeoutMs / 1000} s`), timeoutMs);
      void this.exited.then((code) => (clearTimeout(timer), fail(`npm run dev ended (${code})`)));
      this.waiters.push({ pattern, from, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }

  /** Ctrl-C: SIGINT to the whole process group (npm, tsx, node), as the terminal's line discipline sends it. */
  interrupt(): void {
    if (this.child.pid) process.kill(-this.child.pid, 'SIGINT');
  }
}

describe('npm run dev on the real node (minikube stand-in): save → served through the forward, no failed request', function () {
  this.timeout(60 * 60_000);
  let mk: MinikubeStandIn;
  let user: UserProject;
  let api: KubeClient;
  let dev: DevSession | undefined;
  let port: number;
  let devTmp: string;
  const marker = `KOA_DEV_SESSION=${randomBytes(6).toString('hex')}`;
  const local = () => `http://127.0.0.1:${port}`;
  const servicePods = async () => (await api.list('v1', 'Pod', NAMESPACE)).filter((pod) => pod.metadata.name.startsWith('data-service-'));
  const deployedImage = async () => (await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'))!.spec.template.spec.containers[0].image as string;

  before(async () => {
    ({ mk, user } = await userWithMinikube(log));
    // The containerd runtime: the image is built by BuildKit in the node, as minikube builds it there
    // (main-job.test.ts runs minikube's default, docker).
    user.env.MINIKUBE_CONTAINER_RUNTIME = 'containerd';
    port = await freePort();
    devTmp = scratchDir('koa-dev-session-tmp-');
  });

  after(async () => {
    if (dev && dev.child.exitCode === null && dev.child.signalCode === null) {
      dev.interrupt();
      const gone = await Promise.race([dev.exited, new Promise((resolve) => setTimeout(() => resolve(undefined), 60_000))]);
      if (gone === undefined && dev.child.pid) process.kill(-dev.child.pid, 'SIGKILL');
    }
    if (user && mk?.node()) await user.pulumi(['destroy', '--yes', '--skip-preview']).catch((error: Error) => log(`clean-up destroy: ${error.message.split('\n')[0]}`));
    await mk?.stop();
  });

  it('starts: brings the stack up (npm run up), forwards 127.0.0.1:DEV_PORT to the Service, streams the pods\' logs prettified', async () => {
    const started = Date.now();
    const [key, value] = marker.split('=');
    dev = new DevSession(user, { ...user.env, DEV_PORT: String(port), TMPDIR: devTmp, [key]: value });
    await dev.waitFor(/^dev: .*watching service\/ for changes/, 30 * 60_000);
    log(`npm run dev ready (first npm run up included) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    api = KubeClient.fromKubeconfig(mk.kubeconfig);
    const res = await fetch(`${local()}/`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^Welcome to the Flask app!/);
    // The request line of that GET, from the pod's JSON log: time, level, which pod, method path status ms.
    const line = await dev.waitFor(/ INFO {2}[0-9a-f]{6,10}-[0-9a-z]{5} │ GET \/ 200 [\d.]+ms$/, 30_000, 0);
    log(`a log line as shown: ${line}`);
    const names = (await servicePods()).map((pod) => pod.metadata.name.split('-').slice(-2).join('-'));
    assert.ok(names.some((name) => line.includes(name)), `the line names a pod of the Service (${names.join(', ')})`);
  });

  it('a one-line change to a response is served through the forwarded port, with zero failed requests during the swap', async () => {
    const oldImage = await deployedImage();
    const load = steadyLoad(`${local()}/`, { body: (text) => text.slice(0, 32) });
    let firstNew: number;
    let summary: string;
    let from: number;
    let saved: number;
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000)); // load running before the save
      from = dev!.lines.length;
      saved = Date.now();
      user.edit('service/src/routes/root.ts', 'Welcome to the Flask app!', 'Welcome to the Flask app! (dev 1)');
      // A new connection per try (no keep-alive): what a fresh `curl` sees.
      firstNew = await eventually('the changed answer through the forward', async () => ((await freshGet(`${local()}/`).catch(() => '')).includes('(dev 1)') ? Date.now() : undefined), { timeoutMs: 15 * 60_000, everyMs: 100 });
      summary = await dev!.waitFor(/^dev: change 1 served: /, 5 * 60_000, from);
      await eventually('the last old pod to finish its drain and go', async () => (await servicePods()).every((pod) => pod.spec.containers[0].image !== oldImage), { timeoutMs: 180_000, everyMs: 500 });
    } finally {
      await load.stop();
    }
    log(`load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; save → first new answer through the forward: ${((firstNew - saved) / 1000).toFixed(1)} s (seen by the test); ${summary.replace(/^dev: /, 'dev says: ')}`);
    const build = mk.builds.at(-1);
    log(`the build's parts: ${build?.runtime} build in the node ${build?.buildSeconds?.toFixed(1) ?? '—'} s (as minikube runs it), then the stand-in's own move into containerd ${build?.transferSeconds?.toFixed(1) ?? '—'} s (minikube has no such step)`);
    log(`during the swap: ${load.answered} requests answered through the forward, ${load.failures.length} failed; answers seen: ${[...load.bodies].map(([body, n]) => `${n}× "${body}"`).join(', ')}`);
    assert.deepEqual(load.failures, []);
    assert.ok(load.answered > 50, `steady load ran (${load.answered})`);
    assert.match(summary, /build [\d.]+ s, rollout [\d.]+ s .*first new answer [\d.]+ s after the save/);
    assert.match(dev!.lines.slice(from).find((line) => /^dev: .*change 1: /.test(line)) ?? '', /change 1: src\/routes\/root\.ts/, 'what changed is named');
    assert.ok((await servicePods()).filter(isReady).length >= 2, 'the new pods Ready');
  });

  it('saves made while an update runs make ONE next update; again no failed request', async () => {
    const load = steadyLoad(`${local()}/`, { body: (text) => text.slice(0, 32) });
    try {
      const from = dev!.lines.length;
      user.edit('service/src/routes/root.ts', '(dev 1)', '(dev 2)');
      await dev!.waitFor(/^dev: .*change 2: src\/routes\/root\.ts/, 60_000, from);
      // Two saves while the image builds: the program has hashed the context by then, so they are
      // not in this update (a save before that moment is, and dev then sees it deployed).
      await dev!.waitFor(/^ {2}up .*│ .*dynamic:Resource data-service creating/, 5 * 60_000, from);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      user.edit('service/src/routes/root.ts', '(dev 2)', '(dev 3)');
      await new Promise((resolve) => setTimeout(resolve, 300));
      user.edit('service/src/routes/root.ts', '(dev 3)', '(dev 4)');
      const second = await dev!.waitFor(/^dev: change 2 (served|FAILED|: no new image)/, 15 * 60_000, from);
      const third = await dev!.waitFor(/^dev: change 3 (served|FAILED|: no new image)/, 15 * 60_000, from);
      await eventually('the last version through the forward', async () => (await fetch(`${local()}/`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).catch(() => '')).includes('(dev 4)'), { timeoutMs: 120_000 });
      await new Promise((resolve) => setTimeout(resolve, 5000)); // nothing more comes
      const updates = dev!.lines.slice(from).filter((line) => /^dev: .*change \d+: /.test(line));
      log(`${second.replace(/^dev: /, '')}\n      ${third.replace(/^dev: /, '')}`);
      log(`${load.answered} requests answered through the forward, ${load.failures.length} failed`);
      assert.match(second, /change 2 served: /);
      assert.match(third, /change 3 served: /);
      assert.equal(updates.length, 2, `one update for the first save, ONE for the two made during it: ${updates.join(' | ')}`);
      const served = (version: string) => [...load.bodies.keys()].some((body) => body.includes(version));
      assert.ok(served('(dev 2'), `the first save was served on its own: ${[...load.bodies.keys()].join(' | ')}`);
      assert.ok(!served('(dev 3'), 'the save overtaken during the update was never built');
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, []);
  });

  it('five more saves, one after another: the median from save to first new answer, and no failed request', async () => {
    const load = steadyLoad(`${local()}/`, { body: (text) => text.slice(0, 32) });
    const seconds: number[] = [];
    try {
      for (let version = 5; version <= 9; version += 1) {
        const from = dev!.lines.length;
        const saved = Date.now();
        user.edit('service/src/routes/root.ts', `(dev ${version - 1})`, `(dev ${version})`);
        const firstNew = await eventually(`version ${version} through the forward`, async () => ((await freshGet(`${local()}/`).catch(() => '')).includes(`(dev ${version})`) ? Date.now() : undefined), { timeoutMs: 15 * 60_000, everyMs: 100 });
        seconds.push((firstNew - saved) / 1000);
        const summary = await dev!.waitFor(/^dev: change \d+ (served|FAILED|: no new image)/, 15 * 60_000, from);
        assert.match(summary, /served: /);
        const build = mk.builds.at(-1);
        log(`save ${version - 4}: first new answer ${seconds.at(-1)!.toFixed(1)} s after the save (${build?.runtime} build in the node ${build?.buildSeconds?.toFixed(1) ?? '—'} s, stand-in's own move ${build?.transferSeconds?.toFixed(1) ?? '—'} s)`);
      }
    } finally {
      await load.stop();
    }
    const sorted = [...seconds].sort((a, b) => a - b);
    log(`save → first new answer over ${seconds.length} saves: median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} s, range ${sorted[0].toFixed(1)}–${sorted.at(-1)!.toFixed(1)} s; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    log(`${load.answered} requests answered through the forward, ${load.failures.length} failed`);
    assert.deepEqual(load.failures, []);
    assert.equal(seconds.length, 5);
  });

  it('Ctrl-C: the stack keeps running, the forward and log streams stop, no process or temp file is left', async () => {
    const pods = (await servicePods()).filter(isReady).map((pod) => pod.metadata.name).sort();
    const image = await deployedImage();
    assert.ok(processesWith(marker).length > 0, 'the check sees the session\'s processes while it runs');
    dev!.interrupt();
    const code = await Promise.race([dev!.exited, new Promise((resolve) => setTimeout(() => resolve('still running after 60 s'), 60_000))]);
    // npm waits for its script, then ends itself by the SIGINT it was sent (exit 130 in a shell).
    assert.ok(code === 0 || code === 'SIGINT', `npm run dev ended: ${code}\n${dev!.lines.slice(-20).join('\n')}`);
    // npm itself may end on the SIGINT before its script has finished cleaning up (as in a terminal, where
    // the prompt comes back first): dev's own last line is what says it stopped cleanly.
    await eventually('dev to say it stopped cleanly', async () => dev!.lines.some((line) => /^dev: stopped/.test(line)), { timeoutMs: 30_000, detail: () => dev!.lines.slice(-10).join('\n') });
    log(dev!.lines.find((line) => /^dev: stopped/.test(line))!);
    await eventually('no process of the session', async () => processesWith(marker).length === 0, { timeoutMs: 10_000, detail: () => processesWith(marker).join('\n') });
    // tsx (what `npm run dev` runs under) keeps its per-user compile cache in $TMPDIR/tsx-<uid>, for
    // every tsx run alike; anything else would be the session's.
    assert.deepEqual(readdirSync(devTmp).filter((name) => name !== `tsx-${os.userInfo().uid}`), [], 'no temp file left by dev, pulumi or its plugins');
    await assert.rejects(fetch(`${local()}/`, { signal: AbortSignal.timeout(3000) }), 'the forwarded port is closed');
    // The stack as it was: same image, same pods, still serving at its own URL.
    assert.equal(await deployedImage(), image);
    assert.deepEqual((await servicePods()).filter(isReady).map((pod) => pod.metadata.name).sort(), pods);
    const url = (await user.pulumi(['stack', 'output', 'url'])).trim();
    const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(10_000) });
    assert.match(await res.text(), /\(dev 9\)/);
    dev = undefined;
  });
});
