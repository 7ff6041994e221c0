/**
 * The minikube stand-in's packing (devkit/minikube-standin/pack.ts): what `minikube image build DIR`
 * puts into the tar it copies into the node, by minikube's CreateTarStream on minikube's own
 * libraries. These are the rules the product's image build has to live with on a real Minikube.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../devkit/paths';
import { packContext } from '../../devkit/minikube-standin/pack';

describe('minikube stand-in: the build context packed as minikube packs it', function () {
  this.timeout(600_000); // the first run builds the packer from the Go module proxy
  const made: string[] = [];
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  const entries = async (dir: string, file?: string) => {
    const packed = await packContext(dir, file, () => undefined);
    try {
      return execFileSync('tar', ['-tf', packed.tar], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    } finally {
      packed.remove();
    }
  };
  const context = (files: Record<string, string>) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pack-'));
    made.push(dir);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), text);
    }
    return dir;
  };

  it('the service directory without -f: .dockerignore applied, and the Dockerfile LEFT OUT (the docker CLI would send it)', async () => {
    const service = await entries(path.join(REPO_ROOT, 'service'));
    assert.ok(service.includes('src/main.ts') && service.includes('package-lock.json') && service.includes('tsconfig.json'));
    assert.ok(!service.includes('Dockerfile'), 'no Dockerfile reaches the node: its builder fails');
    assert.ok(!service.some((entry) => entry.startsWith('node_modules') || entry.startsWith('dist')), 'excluded entries stay out');
  });

  it('with -f Dockerfile (what the stack passes) the Dockerfile is force-included, and nothing else is added', async () => {
    const plain = await entries(path.join(REPO_ROOT, 'service'));
    const withFile = await entries(path.join(REPO_ROOT, 'service'), 'Dockerfile');
    assert.deepEqual(withFile.filter((entry) => !plain.includes(entry)), ['Dockerfile']);
  });

  it('minikube\'s own quirks: .dockerignore always force-included when excluded; "#" lines are patterns, not comments', async () => {
    const dir = context({ '.dockerignore': '*\n!keep\n#notes\n', Dockerfile: 'FROM scratch\n', keep: 'k', '#notes': 'n', other: 'o' });
    assert.deepEqual(await entries(dir), ['.dockerignore', 'keep']);
    // The docker CLI (BuildKit's dockerignore reader) would drop "#notes" as a comment; minikube splits lines as they are.
    const open = context({ '.dockerignore': '#notes\n', '#notes': 'n', kept: 'k' });
    assert.deepEqual(await entries(open), ['.dockerignore', 'kept']);
  });
});
