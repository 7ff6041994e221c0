/**
 * The layout the README draws ("How the code is laid out"), held by the
 * imports: the product imports none of the tooling, the test infrastructure
 * (devkit/) imports nothing outside itself, scripts/lib serves only the user's
 * tools, and no module imports one that imports it back.
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
const isProduct = under('index.ts', 'components', 'service');

describe('the code\'s layout', () => {
  const graph = importGraph();
  const edges = [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })));

  it('sees the repository\'s modules and their imports', () => {
    assert.ok(graph.has('devkit/go-build.ts') && graph.has('index.ts') && graph.has('scripts/bench.ts'));
    assert.ok(edges.length > 50, `${edges.length} imports found`);
  });

  it('the product imports none of the tooling', () => {
    assert.deepEqual(edges.filter(({ from, to }) => isProduct(from) && !isProduct(to)), []);
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
