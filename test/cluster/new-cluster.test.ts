/**
 * `minikube delete`, `minikube start`, then `pulumi up`, played with the real engine on two local control
 * planes behind the same kube context name: the second cluster answers at the context as the first did,
 * and only its identity (the kube-system namespace's uid, the provider's clusterIdentifier) differs.
 * Without that identity Pulumi would report "no changes" for objects that no longer exist anywhere.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { CONTEXT, startControlPlane, type ControlPlane } from '../../devkit/control-plane';
import { KubeClient } from '../../devkit/kube';
import { ensurePulumiEngine } from '../../devkit/pulumi-engine';
import { Pulumi, backupsVolume, projectCopy } from './engine';
import { scratchDir } from '../../devkit/scratch';

const NAMESPACE = 'koa-recreated';
const log = (line: string) => console.log(`      ${line}`);

describe('a new cluster behind the same context (minikube delete + start), then pulumi up', function () {
  this.timeout(40 * 60_000);
  let first: ControlPlane | undefined;
  let second: ControlPlane | undefined;
  let bin: string;
  let project: string;
  let state: string;
  let passphrase: string;
  /**
   * One kubeconfig path for both clusters, rewritten for the new one, as minikube rewrites ~/.kube/config
   * (a path that vanished with the old cluster would be a different story: see the closing note).
   */
  let kubeconfig: string;
  const pointAt = (plane: ControlPlane) => copyFileSync(plane.kubeconfig, kubeconfig);
  const pulumiOn = (_plane: ControlPlane) =>
    new Pulumi(project, {
      ...process.env,
      PATH: `${bin}${path.delimiter}${process.env.PATH}`,
      PULUMI_HOME: path.join(state, 'home'),
      PULUMI_BACKEND_URL: `file://${state}`,
      PULUMI_CONFIG_PASSPHRASE: passphrase,
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      KUBECONFIG: kubeconfig,
    });

  before(async () => {
    bin = ensurePulumiEngine(log);
    project = projectCopy();
    state = scratchDir('koa-recreated-state-');
    passphrase = randomBytes(12).toString('hex');
    mkdirSync(path.join(state, 'kube'));
    kubeconfig = path.join(state, 'kube', 'config');
    first = await startControlPlane(log);
    await backupsVolume(KubeClient.fromKubeconfig(first.kubeconfig));
    pointAt(first);
    const pulumi = pulumiOn(first);
    await pulumi.ok(['stack', 'init', 'recreated']);
    const config = { kubeContext: CONTEXT, namespace: NAMESPACE, imageMode: 'prebuilt', image: 'ghcr.io/example/data-service:1.0.0', adminImage: 'ghcr.io/example/data-admin:1.0.0', mongoStaticVolume: 'true' };
    for (const [key, value] of Object.entries(config)) await pulumi.ok(['config', 'set', key, value]);
    await pulumi.ok(['config', 'set', '--secret', 'mongoRootPassword', randomBytes(9).toString('hex')]);
    await pulumi.ok(['config', 'set', '--secret', 'mongoAppPassword', randomBytes(9).toString('hex')]);
    await pulumi.ok(['up', '--yes', '--skip-preview']);
  });

  after(async () => {
    if (second) await pulumiOn(second).run(['destroy', '--yes', '--skip-preview']);
    if (second ?? first) await pulumiOn((second ?? first)!).run(['stack', 'rm', '--yes', '--force']);
    await first?.stop();
    await second?.stop();
  });

  it('the next pulumi up sees a new cluster and creates every object on it again', async () => {
    await first!.stop(); // minikube delete
    first = undefined;
    second = await startControlPlane(log); // minikube start: same context name, a cluster that has nothing of ours
    pointAt(second);
    const api = KubeClient.fromKubeconfig(second.kubeconfig);
    assert.equal(await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service'), undefined);
    await backupsVolume(api);

    const pulumi = pulumiOn(second);
    const preview = await pulumi.ok(['preview', '--diff']);
    assert.match(preview, /clusterIdentifier/, 'the provider is replaced for the new identity');
    const up = await pulumi.ok(['up', '--yes', '--skip-preview']);
    assert.match(up, /replaced/);

    // Everything exists on the new cluster (and was not deleted again by name after its creation).
    const deployment = await api.get('apps/v1', 'Deployment', NAMESPACE, 'data-service');
    assert.equal(deployment?.status?.readyReplicas, 2);
    assert.ok(await api.get('apps/v1', 'StatefulSet', NAMESPACE, 'mongodb'));
    assert.ok(await api.get('v1', 'Secret', NAMESPACE, 'mongodb-credentials'));
    assert.equal((await api.get('batch/v1', 'Job', NAMESPACE, 'mongodb-users'))?.status?.succeeded, 1, 'the users Job ran again on the new cluster');
    // And the state now matches it: nothing left to do.
    await pulumi.ok(['up', '--yes', '--expect-no-changes']);
  });
});
