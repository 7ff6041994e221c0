/**
 * kubectl for the tests that run the README's kubectl commands: built once per machine from the Go
 * module proxy (devkit/go/kubectl, the same release as the control plane) into ~/.cache/koa-mongodb,
 * because a clean machine has none and the project must bring what it needs.
 */
import path from 'node:path';
import { ensureGoTool } from './go-build';
import { GO_MODULES, cacheEntry } from './paths';

const VERSION = 'v1.34.4';

export function ensureKubectl(log: (line: string) => void = console.log): string {
  const stamp = `-s -w -X k8s.io/component-base/version.gitVersion=${VERSION} -X k8s.io/client-go/pkg/version.gitVersion=${VERSION}`;
  const [kubectl] = ensureGoTool(
    {
      what: `kubectl ${VERSION}`,
      firstBuild: 'about 3 minutes on two cores',
      into: { dir: cacheEntry('kubectl', ['kubectl']), names: ['kubectl'] },
      build: { cwd: path.join(GO_MODULES, 'kubectl'), packages: ['.'], ldflags: stamp },
    },
    log,
  );
  return kubectl;
}
