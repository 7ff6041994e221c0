/**
 * The Pulumi engine, built from the Go module proxy: the CLI at the version of
 * our @pulumi/pulumi (3.248.0), a Node.js language host, and the Kubernetes
 * provider at the version of our @pulumi/kubernetes (4.25.0). See
 * devkit/go/pulumi*, and devkit/pulumi-engine.ts, which builds them.
 */
import { execFile } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import type { KubeClient } from '../../devkit/kube';
import { REPO_ROOT } from '../../devkit/paths';
import { scratchDir } from '../../devkit/scratch';

export interface PulumiRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A project directory of its own (stack files land there, not in the repository) running the repository's program. */
export function projectCopy(): string {
  const dir = scratchDir('koa-engine-project-');
  for (const entry of ['Pulumi.yaml', 'index.ts', 'components', 'service', 'package.json', 'tsconfig.json', 'node_modules']) {
    symlinkSync(path.join(REPO_ROOT, entry), path.join(dir, entry));
  }
  return dir;
}

export class Pulumi {
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    private readonly cwd: string,
    env: NodeJS.ProcessEnv,
  ) {
    // The engine and its plugins write temp files and leave some (the kubernetes provider a kubeconfig
    // with the cluster's token, one per run; the CLI its plugin pipes): a TMPDIR of their own, removed at exit.
    this.env = { ...env, TMPDIR: scratchDir('koa-pulumi-tmp-') };
  }

  run(args: string[], input?: string): Promise<PulumiRun> {
    return new Promise((resolve) => {
      const child = execFile('pulumi', [...args, '--non-interactive'], { cwd: this.cwd, env: this.env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
      if (input !== undefined) child.stdin?.end(input);
      else child.stdin?.end();
    });
  }

  /** Runs and fails with the engine's own output when the command fails. */
  async ok(args: string[], input?: string): Promise<string> {
    const result = await this.run(args, input);
    if (result.code !== 0) throw new Error(`pulumi ${args.join(' ')} failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }
}

/** The PersistentVolume that backupsVolume makes: the test's own, not the stack's. */
export const BACKUPS_PV = 'koa-test-backups';

/**
 * The backups' claim asks for Minikube's StorageClass `standard`; this control plane has no provisioner
 * (kwok plays the kubelet), so the claim would stay Pending and `pulumi up` wait for it. A volume of that
 * class binds it, as Minikube's provisioner would make one.
 */
export async function backupsVolume(api: KubeClient): Promise<void> {
  await api.create({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: BACKUPS_PV },
    spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'standard', persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: '/tmp/koa-test-backups' } },
  });
}
