import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { assertClusterReachable } from '../e2e/preflight';
import { scratchDir } from '../../devkit/scratch';

/** The end-to-end test must stop at once, saying what to do, where there is no cluster. */
describe('end-to-end preflight', () => {
  const saved = process.env.KUBECONFIG;
  afterEach(() => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });

  const kubeconfig = (server: string) => {
    const file = path.join(scratchDir('kc-'), 'config');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: mk\n  cluster:\n    server: ${server}\ncontexts:\n- name: minikube\n  context:\n    cluster: mk\n    user: u\ncurrent-context: minikube\nusers:\n- name: u\n  user:\n    token: t\n`,
    );
    return file;
  };

  it('names the missing context', async () => {
    process.env.KUBECONFIG = kubeconfig('https://127.0.0.1:1');
    await assert.rejects(assertClusterReachable('nope'), /kube context "nope" is not in the kubeconfig: run `minikube start`/);
  });

  it('says the cluster is not reachable, quickly', async () => {
    process.env.KUBECONFIG = kubeconfig('https://127.0.0.1:1');
    const started = Date.now();
    await assert.rejects(assertClusterReachable('minikube'), /the cluster of context "minikube" \(https:\/\/127\.0\.0\.1:1\) is not reachable .*run `minikube start`/);
    assert.ok(Date.now() - started < 12_000);
  });
});
