/**
 * A run that dies without stopping its node (a killed test runner, kill -9) must not
 * leave the node behind for good: its daemons die with it (parent-death signal), and
 * the containers and namespaces that outlive it are swept by the next start
 * (sweepStaleNodes), which also puts the kernel settings back. Needs root.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { REPO_ROOT } from '../../devkit/paths';
import { eventually } from '../../devkit/wait';
import { cgroupPids } from '../../devkit/node/host-state';
import { LINK } from '../../devkit/node/namespace';
import { sweepStaleNodes, type NodeState } from '../../devkit/node/teardown';

const SYSCTLS = ['kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory'];
const linkExists = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).includes(`${LINK.hostDevice}@`);
const processesWith = (text: string) =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);

describe('a node whose starter was killed', function () {
  this.timeout(10 * 60_000);

  it('loses its daemons at once, and the next start sweeps the rest and restores the host', async () => {
    assert.equal(process.getuid?.(), 0, 'the node needs root');
    await sweepStaleNodes(() => undefined);
    const sysctlsBefore = SYSCTLS.map((name) => readFileSync(`/proc/sys/${name}`, 'utf8'));

    // `npm run cluster:local -- --node` as one process, killed with SIGKILL once the cluster is up.
    const child = spawn(process.execPath, ['--import', 'tsx', 'devkit/tools/cluster-local.ts', '--node'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let nodeDir = '';
    let planeDir = '';
    await new Promise<void>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        nodeDir ||= line.match(/logs in (\S+)\/logs/)?.[1] ?? '';
        planeDir ||= line.match(/KUBECONFIG=(\S+)\/kubeconfig/)?.[1] ?? '';
        if (line.startsWith('Ctrl-C stops it.')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`cluster:local --node exited (${code}) before it was up`)));
    });
    const state = JSON.parse(readFileSync(path.join(nodeDir, 'state.json'), 'utf8')) as NodeState;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;

    try {
      // The daemons (containerd, kubelet, kube-proxy, the API relay: LINK.host as an argument of its own) carry a parent-death signal.
      // (The killed run's API server names files of the node's directory too: it is not one of them.)
      const daemons = () => [...processesWith(nodeDir), ...processesWith(`\0${LINK.host}\0`)].filter((pid) => !processesWith(planeDir).includes(pid));
      await eventually('the node daemons to die with their starter', async () => daemons().length === 0, { timeoutMs: 10_000 });
      // What outlives them: the addons' containers (their shims are reparented), hence the namespaces and the veth.
      assert.ok(cgroupPids(state.cgroupRoot).length > 0, 'containers outlive the killed run');
      assert.ok(linkExists(), `${LINK.hostDevice} outlives the killed run`);

      await sweepStaleNodes((line) => console.log(`      ${line}`));
      assert.equal(linkExists(), false, `${LINK.hostDevice} is gone`);
      assert.equal(existsSync(`/sys/fs/cgroup/pids${state.cgroupRoot}`), false, 'the cgroups are removed');
      assert.equal(existsSync(nodeDir), false, "the node's directory is removed");
      assert.deepEqual(SYSCTLS.map((name) => readFileSync(`/proc/sys/${name}`, 'utf8')), sysctlsBefore);
      assert.deepEqual(processesWith('containerd-shim-runc-v2 -namespace k8s.io'), []);
    } finally {
      // The control plane of the killed run is not the node's to sweep: end its processes here.
      for (const pid of processesWith(planeDir)) process.kill(pid, 'SIGKILL');
      rmSync(planeDir, { recursive: true, force: true });
    }
  });
});
