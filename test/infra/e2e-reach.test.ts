import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../../devkit/wait';
import { planReach, startPortForward } from '../e2e/reach';

const PORT_FORWARD = 'kubectl --context minikube -n koa-mongodb port-forward svc/data-service 5000:5000';

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** How the end-to-end test reaches the service: the url as it is, or its own port-forward. */
describe('end-to-end reach', () => {
  it('a node address is used as it is', () => {
    assert.deepEqual(planReach('http://192.168.49.2:31234', PORT_FORWARD), { kind: 'direct', url: 'http://192.168.49.2:31234' });
  });

  for (const url of ['http://localhost:5000', 'http://127.0.0.1:5000', 'http://[::1]:5000']) {
    it(`a loopback url (${url}) means running the portForward command, on a port of our own`, () => {
      const plan = planReach(url, PORT_FORWARD);
      assert.equal(plan.kind, 'port-forward');
      if (plan.kind !== 'port-forward') return;
      assert.equal(plan.service, 'data-service');
      assert.equal(plan.remotePort, 5000);
      assert.deepEqual(plan.kubectlArgs(43210), ['--context', 'minikube', '-n', 'koa-mongodb', 'port-forward', 'svc/data-service', '43210:5000']);
    });
  }

  it('a loopback url without a port-forward command to run is an error that says so', () => {
    assert.throws(() => planReach('http://localhost:5000', 'minikube service data-service'), /needs a port-forward, but the portForward output is not a kubectl port-forward command/);
  });

  describe('the port-forward process (a fake kubectl)', () => {
    let dir: string;
    let kubectl: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'reach-'));
      kubectl = path.join(dir, 'kubectl');
      // Listens on the local port like kubectl port-forward; the first one "loses its pod" after one request.
      writeFileSync(
        kubectl,
        `#!${process.execPath}
const fs = require('node:fs');
const http = require('node:http');
const [local, remote] = process.argv.at(-1).split(':');
const first = !fs.existsSync(${JSON.stringify(path.join(dir, 'started'))});
fs.writeFileSync(${JSON.stringify(path.join(dir, 'started'))}, '');
const server = http.createServer((req, res) => {
  res.end(first ? 'first pod' : 'second pod', () => first && process.exit(1));
});
server.listen(Number(local), '127.0.0.1', () => console.log('Forwarding from 127.0.0.1:' + local + ' -> ' + remote));
`,
      );
      chmodSync(kubectl, 0o755);
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('starts on a free port, follows a new pod when the old one goes, and stops', async () => {
      const plan = planReach('http://localhost:5000', PORT_FORWARD);
      assert.equal(plan.kind, 'port-forward');
      if (plan.kind !== 'port-forward') return;
      const lines: string[] = [];
      const forward = await startPortForward(plan, (line) => lines.push(line), kubectl);
      assert.match(forward.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(forward.url, 'http://127.0.0.1:5000');
      assert.equal(await get(forward.url), 'first pod');
      const body = await eventually('the port-forward to come back', () => get(forward.url).catch(() => undefined), { timeoutMs: 10_000, everyMs: 100 });
      assert.equal(body, 'second pod');
      assert.ok(lines.some((line) => /exited \(1\); starting it again/.test(line)), lines.join('\n'));
      await forward.stop();
      await assert.rejects(get(forward.url), /ECONNREFUSED/);
    });
  });
});
