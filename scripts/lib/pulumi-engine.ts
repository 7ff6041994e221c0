/**
 * The Pulumi engine for test/cluster, built from the Go module proxy once per
 * machine into ~/.cache/koa-mongodb:
 * - the CLI at our @pulumi/pulumi's version (tools/pulumi: pkg/v3 v3.248.0);
 * - a Node.js language host (tools/pulumi-language-nodejs). The proxy does not
 *   serve the current host's own module (github.com/pulumi/pulumi/sdk/nodejs/cmd/
 *   pulumi-language-nodejs/v3 answers 403), so this is the last one that lived
 *   inside the sdk/v3 module, v3.56.0; it runs @pulumi/pulumi 3.248's program
 *   harness unchanged;
 * - the Kubernetes provider at our @pulumi/kubernetes's version: the proxy has
 *   the provider module only at a pseudo-version of v4.25.0. Its main embeds a
 *   schema generated at release time, so the module is copied, its ../sdk
 *   replace swapped for the published sdk/v4, the schema generated with the
 *   module's own generate.go, and then built.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { hashTree } from './cache';
import { CACHE_DIR, REPO_ROOT } from './ferretdb';

const CLI_VERSION = 'v3.248.0';
const LANGUAGE_HOST_VERSION = 'v3.56.0';
export const PROVIDER_VERSION = '4.25.0';
const PROVIDER_MODULE = 'github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-20260115033456-f47bc2d6f199';
const PROVIDER_SDK = 'github.com/pulumi/pulumi-kubernetes/sdk/v4@v4.24.0';

function go(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): void {
  const result = spawnSync('go', args, { cwd, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0', ...env } });
  if (result.status !== 0) throw new Error(`go ${args.join(' ')} (in ${cwd}) failed with exit ${result.status}`);
}

/** Directory holding pulumi, pulumi-language-nodejs and pulumi-resource-kubernetes; put it first on PATH. */
export function ensurePulumiEngine(log: (line: string) => void = console.log): string {
  const cliDir = path.join(REPO_ROOT, 'tools', 'pulumi');
  const hostDir = path.join(REPO_ROOT, 'tools', 'pulumi-language-nodejs');
  const out = path.join(CACHE_DIR, `pulumi-engine-${hashTree([cliDir, hostDir], `${PROVIDER_MODULE} ${PROVIDER_SDK}`)}`);
  const binaries = ['pulumi', 'pulumi-language-nodejs', 'pulumi-resource-kubernetes'];
  if (binaries.every((name) => existsSync(path.join(out, name)))) return out;

  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const version = (pkg: string, value: string) => `-X ${pkg}=${value}`;
  if (!existsSync(path.join(out, 'pulumi'))) {
    log(`building the Pulumi CLI ${CLI_VERSION} (about 4 minutes)…`);
    go(['build', '-trimpath', '-ldflags', version('github.com/pulumi/pulumi/sdk/v3/go/common/version.Version', CLI_VERSION), '-o', path.join(out, 'pulumi'), 'github.com/pulumi/pulumi/pkg/v3/cmd/pulumi'], cliDir);
  }
  if (!existsSync(path.join(out, 'pulumi-language-nodejs'))) {
    log(`building the Node.js language host ${LANGUAGE_HOST_VERSION}…`);
    go(['build', '-trimpath', '-ldflags', version('github.com/pulumi/pulumi/sdk/v3/go/common/version.Version', LANGUAGE_HOST_VERSION), '-o', path.join(out, 'pulumi-language-nodejs'), 'github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs'], hostDir);
  }
  if (!existsSync(path.join(out, 'pulumi-resource-kubernetes'))) {
    log(`building pulumi-resource-kubernetes ${PROVIDER_VERSION} (about 6 minutes)…`);
    const downloaded = JSON.parse(execFileSync('go', ['mod', 'download', '-json', PROVIDER_MODULE], { encoding: 'utf8' })) as { Dir: string };
    const src = path.join(CACHE_DIR, 'src', `pulumi-kubernetes-provider-${PROVIDER_VERSION}`);
    rmSync(src, { recursive: true, force: true });
    cpSync(downloaded.Dir, src, { recursive: true });
    spawnSync('chmod', ['-R', 'u+w', src]);
    go(['mod', 'edit', '-dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4'], src);
    go(['get', PROVIDER_SDK], src);
    go(['run', './generate.go'], path.join(src, 'cmd', 'pulumi-resource-kubernetes'), { VERSION: PROVIDER_VERSION });
    go(['build', '-trimpath', '-ldflags', version('github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version', PROVIDER_VERSION), '-o', path.join(out, 'pulumi-resource-kubernetes'), './cmd/pulumi-resource-kubernetes'], src);
  }
  log(`Pulumi engine built in ${((Date.now() - started) / 1000).toFixed(0)} s into ${out}`);
  return out;
}
