/**
 * The Pulumi engine for test/cluster, built from the Go module proxy once per
 * machine into ~/.cache/koa-mongodb:
 * - the CLI at our @pulumi/pulumi's version (devkit/go/pulumi: pkg/v3 v3.248.0);
 * - a Node.js language host (devkit/go/pulumi-language-nodejs). The proxy does not
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
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureGoTool, go } from './go-build';
import { CACHE_DIR, GO_MODULES, REPO_ROOT, cacheEntry } from './paths';

const CLI_VERSION = 'v3.248.0';
const LANGUAGE_HOST_VERSION = 'v3.56.0';
export const PROVIDER_VERSION = '4.25.0';
const PROVIDER_MODULE = 'github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-20260115033456-f47bc2d6f199';
const PROVIDER_SDK = 'github.com/pulumi/pulumi-kubernetes/sdk/v4@v4.24.0';

const stamp = (pkg: string, value: string) => `-X ${pkg}=${value}`;
const SDK_VERSION = 'github.com/pulumi/pulumi/sdk/v3/go/common/version.Version';

/**
 * The provider's module from the proxy, copied to a scratch directory of its own
 * (so two builds never share it), its ../sdk replace swapped for the published
 * sdk/v4 and its schema generated; removed by `cleanup` after the build.
 */
function prepareProvider(): { cwd: string; cleanup: () => void } {
  const downloaded = JSON.parse(execFileSync('go', ['mod', 'download', '-json', PROVIDER_MODULE], { encoding: 'utf8' })) as { Dir: string };
  mkdirSync(path.join(CACHE_DIR, 'src'), { recursive: true });
  const src = mkdtempSync(path.join(CACHE_DIR, 'src', `pulumi-kubernetes-provider-${PROVIDER_VERSION}-`));
  cpSync(downloaded.Dir, src, { recursive: true });
  spawnSync('chmod', ['-R', 'u+w', src]);
  go(['mod', 'edit', '-dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4'], src);
  go(['get', PROVIDER_SDK], src);
  go(['run', './generate.go'], path.join(src, 'cmd', 'pulumi-resource-kubernetes'), { VERSION: PROVIDER_VERSION });
  return { cwd: src, cleanup: () => rmSync(src, { recursive: true, force: true }) };
}

/** Directory holding pulumi, pulumi-language-nodejs and pulumi-resource-kubernetes; put it first on PATH. */
export function ensurePulumiEngine(log: (line: string) => void = console.log): string {
  const out = cacheEntry('pulumi-engine', ['pulumi', 'pulumi-language-nodejs'], `${PROVIDER_MODULE} ${PROVIDER_SDK}`);
  ensureGoTool(
    {
      what: `the Pulumi CLI ${CLI_VERSION}`,
      firstBuild: 'about 4 minutes',
      into: { dir: out, names: ['pulumi'] },
      build: { cwd: path.join(GO_MODULES, 'pulumi'), packages: ['github.com/pulumi/pulumi/pkg/v3/cmd/pulumi'], ldflags: stamp(SDK_VERSION, CLI_VERSION) },
    },
    log,
  );
  ensureGoTool(
    {
      what: `the Node.js language host ${LANGUAGE_HOST_VERSION}`,
      firstBuild: 'about a minute',
      into: { dir: out, names: ['pulumi-language-nodejs'] },
      build: { cwd: path.join(GO_MODULES, 'pulumi-language-nodejs'), packages: ['github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs'], ldflags: stamp(SDK_VERSION, LANGUAGE_HOST_VERSION) },
    },
    log,
  );
  let provider: { cwd: string; cleanup: () => void } | undefined;
  try {
    ensureGoTool(
      {
        what: `pulumi-resource-kubernetes ${PROVIDER_VERSION}`,
        firstBuild: 'about 6 minutes',
        into: { dir: out, names: ['pulumi-resource-kubernetes'] },
        build: () => {
          provider = prepareProvider();
          return { cwd: provider.cwd, packages: ['./cmd/pulumi-resource-kubernetes'], ldflags: stamp('github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version', PROVIDER_VERSION) };
        },
      },
      log,
    );
  } finally {
    provider?.cleanup();
  }
  // The CLI's own distribution carries the SDK's dynamic-provider launcher (a shell script that runs
  // @pulumi/pulumi's cmd/dynamic-provider from the program's node_modules): without it, a dynamic
  // resource (MinikubeImage) fails with "no resource plugin 'pulumi-resource-pulumi-nodejs' found".
  const launcher = path.join(out, 'pulumi-resource-pulumi-nodejs');
  if (!existsSync(launcher)) {
    copyFileSync(path.join(REPO_ROOT, 'node_modules', '@pulumi', 'pulumi', 'pulumi-resource-pulumi-nodejs'), launcher);
    chmodSync(launcher, 0o755);
  }
  return out;
}
