/**
 * The layout docs/devkit.md draws, held by the imports: the product imports
 * none of the tooling, the user's tools (scripts/) import nothing of the test
 * infrastructure (devkit/: FerretDB, the control plane, Go builds), devkit/
 * imports nothing outside itself and the product, scripts/lib serves only the
 * user's tools, and no module imports one that imports it back.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './fixtures';

const SKIP = new Set(['node_modules', 'dist', '.git']);

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return modules(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

/** Each module's relative imports (static, side-effect, dynamic and require), as repository-relative paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of modules(ROOT)) {
    const source = readFileSync(file, 'utf8');
    const targets = [...source.matchAll(/(?:\bfrom|\bimport\(|\brequire\(|^import)\s*['"](\.[^'"]+)['"]/gm)].flatMap((match) => {
      const base = path.resolve(path.dirname(file), match[1]);
      const target = [`${base}.ts`, path.join(base, 'index.ts'), base].find((candidate) => candidate.endsWith('.ts') && existsSync(candidate));
      return target ? [path.relative(ROOT, target)] : [];
    });
    graph.set(path.relative(ROOT, file), targets);
  }
  return graph;
}

/** The groups of modules that reach each other through imports (Tarjan's strongly connected components of two or more). */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (module: string) => {
    index.set(module, counter);
    low.set(module, counter++);
    stack.push(module);
    onStack.add(module);
    for (const target of graph.get(module) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(module, Math.min(low.get(module)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(module, Math.min(low.get(module)!, index.get(target)!));
      }
    }
    if (low.get(module) === index.get(module)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        group.push(member);
      } while (member !== module);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const module of graph.keys()) if (!index.has(module)) visit(module);
  return found;
}

const under = (...prefixes: string[]) => (module: string) => prefixes.some((prefix) => module === prefix || module.startsWith(`${prefix}/`));
const isProduct = under('index.ts', 'components', 'service', 'admin');
/** An import by one of the user's tools of the test infrastructure: what a user's tool may never need. */
const userToolNeedsDevkit = ({ from, to }: { from: string; to: string }) => under('scripts')(from) && under('devkit')(to);

describe('the code\'s layout', () => {
  const graph = importGraph();
  const edges = [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })));

  it('sees the repository\'s modules and their imports', () => {
    assert.ok(graph.has('devkit/go-build.ts') && graph.has('index.ts') && graph.has('scripts/load.ts') && graph.has('devkit/tools/bench.ts'));
    assert.ok(edges.length > 50, `${edges.length} imports found`);
  });

  it('the product imports none of the tooling', () => {
    assert.deepEqual(edges.filter(({ from, to }) => isProduct(from) && !isProduct(to)), []);
  });

  it('the user\'s tools (scripts/) import nothing from the test infrastructure (devkit/)', () => {
    // The rule catches such an edge from anywhere under scripts/, and only there.
    for (const from of ['scripts/load.ts', 'scripts/dev/pods.ts', 'scripts/lib/stats.ts']) {
      assert.ok(userToolNeedsDevkit({ from, to: 'devkit/ferretdb.ts' }), `${from} → devkit/ferretdb.ts is caught`);
    }
    assert.ok(!userToolNeedsDevkit({ from: 'devkit/tools/bench.ts', to: 'devkit/ferretdb.ts' }));
    assert.ok(!userToolNeedsDevkit({ from: 'scripts/dev.ts', to: 'components/buildContext.ts' }));
    assert.ok(edges.some(({ from }) => under('scripts')(from)), 'the user\'s tools\' imports are seen');
    assert.deepEqual(edges.filter(userToolNeedsDevkit), []);
  });

  it('nor do the user\'s shell and JavaScript tools name devkit/', () => {
    const files = (function walk(dir: string): string[] {
      return readdirSync(dir).flatMap((name) => {
        const full = path.join(dir, name);
        return statSync(full).isDirectory() ? walk(full) : /\.(?:sh|js|mjs|cjs)$/.test(name) ? [full] : [];
      });
    })(path.join(ROOT, 'scripts'));
    assert.ok(files.some((file) => file.endsWith('minikube-up.sh')));
    assert.deepEqual(files.filter((file) => /\bdevkit\//.test(readFileSync(file, 'utf8'))).map((file) => path.relative(ROOT, file)), []);
  });

  it('the test infrastructure (devkit/) imports only itself and the product it builds (never the tools or the tests)', () => {
    // devkit/images tags the service image with the product's own content hash (components/buildContext.ts).
    assert.deepEqual(edges.filter(({ from, to }) => under('devkit')(from) && !under('devkit')(to) && !isProduct(to)), []);
  });

  it('scripts/lib serves only the user\'s tools', () => {
    assert.deepEqual(edges.filter(({ from, to }) => under('scripts/lib')(to) && !under('scripts')(from)), []);
  });

  it('no two modules import each other, directly or through others', () => {
    assert.deepEqual(cycles(graph), []);
  });
});
