/**
 * `npm run test:e2e`: the whole stack on a real Minikube, through Pulumi's
 * Automation API. A throw-away stack (own namespace, local file backend unless
 * PULUMI_BACKEND_URL is set, random secrets) goes through:
 *   up → the URL answers → POST then GET /data → the MongoDB pod is deleted and
 *   the data is still there when it is back → a config change rolls the
 *   Deployment while a steady trickle of requests runs, none failing →
 *   destroy → stack removed.
 * Takes 4–8 minutes on a laptop (image build and the mongo image pull dominate).
 * Where `url` is a loopback address (the docker driver on macOS and Windows), the
 * test runs the `portForward` output's command itself on a free port (see reach.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import { LocalWorkspace, type Stack } from '@pulumi/pulumi/automation';
import { eventually } from '../../devkit/wait';
import { assertClusterReachable, pulumiVersion } from './preflight';
import { type Background, planReach, type Reach, startPortForward, startServiceProxy } from './reach';

const ROOT = path.resolve(__dirname, '..', '..');
const CONTEXT = process.env.E2E_KUBE_CONTEXT ?? 'minikube';
const suffix = randomBytes(3).toString('hex');
const NAMESPACE = `koa-e2e-${suffix}`;
const STACK = `e2e-${suffix}`;

const log = (line: string) => process.stdout.write(`      ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One request on a fresh connection (no keep-alive), like a new client would make. */
function get(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe(`end to end on Minikube (context ${CONTEXT})`, function () {
  this.timeout(20 * 60_000);
  let stack: Stack | undefined;
  let url: string;
  let reach: Reach;
  const running: Background[] = [];
  let core: CoreV1Api;
  const marker = `e2e-${suffix}`;

  before(async () => {
    log(pulumiVersion());
    log(`cluster: ${await assertClusterReachable(CONTEXT)}`);
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromDefault();
    kc.setCurrentContext(CONTEXT);
    core = kc.makeApiClient(k8s.CoreV1Api);

    const backend = process.env.PULUMI_BACKEND_URL ?? `file://${mkdtempSync(path.join(os.tmpdir(), 'koa-e2e-state-'))}`;
    stack = await LocalWorkspace.createOrSelectStack(
      { stackName: STACK, workDir: ROOT },
      { envVars: { PULUMI_BACKEND_URL: backend, PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? randomBytes(16).toString('hex') } },
    );
    await stack.setAllConfig({
      'koa-mongodb:kubeContext': { value: CONTEXT },
      'koa-mongodb:namespace': { value: NAMESPACE },
      'koa-mongodb:mongoRootPassword': { value: randomBytes(18).toString('base64url'), secret: true },
      'koa-mongodb:mongoAppPassword': { value: randomBytes(18).toString('base64url'), secret: true },
    });
    log(`stack ${STACK} (backend ${backend}), namespace ${NAMESPACE}`);
  });

  after(async () => {
    await Promise.all(running.map((process) => process.stop()));
    if (!stack) return;
    log('destroying…');
    await stack.destroy({ onOutput: () => undefined });
    await stack.workspace.removeStack(STACK);
    const left = await core.readNamespace({ name: NAMESPACE }).then(
      (ns) => ns.status?.phase ?? 'present',
      () => 'gone',
    );
    log(`namespace after destroy: ${left}`);
    assert.ok(left === 'gone' || left === 'Terminating', `namespace ${NAMESPACE} is ${left}`);
  });

  it('pulumi up builds the image and creates everything, with a url output', async () => {
    const started = Date.now();
    const result = await stack!.up({ onOutput: (line) => process.env.E2E_VERBOSE && process.stdout.write(line) });
    log(`up took ${((Date.now() - started) / 1000).toFixed(0)} s: ${JSON.stringify(result.summary.resourceChanges)}`);
    url = String(result.outputs.url.value);
    assert.match(url, /^http:\/\/[\w.-]+:\d+$/);
    reach = planReach(url, String(result.outputs.portForward.value));
    if (reach.kind === 'port-forward') {
      const forward = await startPortForward(reach, log);
      running.push(forward);
      log(`url ${url} is this machine's loopback: reaching the service through \`kubectl ${reach.kubectlArgs(0).join(' ')}\` at ${forward.url}`);
      url = forward.url;
    }
    assert.match(String(result.outputs.image.value), /^data-service:[0-9a-f]{16}$/);
    assert.equal(result.outputs.namespace.value, NAMESPACE);
  });

  it('the url answers GET / as the guide shows', async () => {
    const res = await eventually(
      'the url to answer',
      async () => {
        const r = await get(`${url}/`);
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 120_000, everyMs: 2000 },
    );
    assert.match(res.body, /^Welcome to the Flask app! The current time is: /);
  });

  it('POST then GET /data round-trips through MongoDB', async () => {
    const body = JSON.stringify({ key: 'value', marker });
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${url}/data`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(status, 201);
    const res = await get(`${url}/data`);
    assert.ok((JSON.parse(res.body) as Array<{ marker?: string }>).some((doc) => doc.marker === marker));
  });

  it('data survives the MongoDB pod being deleted', async () => {
    const before = await core.readNamespacedPod({ name: 'mongodb-0', namespace: NAMESPACE });
    await core.deleteNamespacedPod({ name: 'mongodb-0', namespace: NAMESPACE });
    log('deleted mongodb-0; waiting for its replacement to be Ready…');
    await eventually(
      'a new, ready mongodb-0',
      async () => {
        const pod = await core.readNamespacedPod({ name: 'mongodb-0', namespace: NAMESPACE });
        const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        return pod.metadata?.uid !== before.metadata?.uid && ready ? pod : undefined;
      },
      { timeoutMs: 300_000, everyMs: 2000 },
    );
    const docs = await eventually(
      'the service to read again',
      async () => {
        const res = await get(`${url}/data`);
        return res.status === 200 ? (JSON.parse(res.body) as Array<{ marker?: string }>) : undefined;
      },
      { timeoutMs: 120_000, everyMs: 2000 },
    );
    assert.ok(docs.some((doc) => doc.marker === marker), 'the document written before the deletion is still there');
  });

  it('a config change rolls out while requests keep flowing, none failing', async () => {
    // A port-forward follows one pod, which the rollout replaces; through the Service instead.
    let through = url;
    if (reach.kind === 'port-forward') {
      const proxy = await startServiceProxy({ context: CONTEXT, namespace: NAMESPACE, service: reach.service, port: reach.remotePort }, log);
      running.push(proxy);
      through = proxy.url;
      log(`requests during the rollout go through the API server's service proxy: ${through}`);
    }
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const trickle = (async () => {
      while (!stop) {
        try {
          const res = await get(`${through}/data?limit=1`);
          if (res.status === 200) ok++;
          else failures.push(`HTTP ${res.status}`);
        } catch (error) {
          failures.push((error as Error).message);
        }
        await sleep(100);
      }
    })();
    await stack!.setConfig('koa-mongodb:logLevel', { value: 'debug' });
    const result = await stack!.up({ onOutput: () => undefined });
    await sleep(10_000); // the old pods' drain, after Pulumi saw the rollout complete
    stop = true;
    await trickle;
    log(`rollout: ${JSON.stringify(result.summary.resourceChanges)}; ${ok} requests answered, ${failures.length} failed`);
    assert.equal(result.summary.resourceChanges?.update, 1, 'only the Deployment changed');
    assert.ok(ok > 50, `a steady trickle ran (${ok} requests)`);
    assert.deepEqual(failures, []);
  });
});
