/**
 * `npm run dev`'s watcher (scripts/dev/watch.ts): it sees the files of the image's build context
 * (components/buildContext.ts CONTEXT_ENTRIES) and nothing else: not dist/, node_modules/, the
 * Pulumi state, or files beside them in service/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTEXT_ENTRIES } from '../../components/buildContext';
import { inBuildContext, watchBuildContext } from '../../scripts/dev/watch';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('npm run dev: watching the build context only', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'koa-dev-watch-'));
    for (const sub of ['src/routes', 'dist', 'node_modules/koa', '.pulumi']) mkdirSync(path.join(dir, sub), { recursive: true });
    for (const file of ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'src/app.ts', 'src/routes/root.ts', 'README.md']) {
      writeFileSync(path.join(dir, file), 'x');
    }
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('inBuildContext follows CONTEXT_ENTRIES, the list contextHash hashes', () => {
    assert.deepEqual(CONTEXT_ENTRIES, ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'src']);
    for (const inside of ['src/app.ts', 'src/routes/root.ts', 'Dockerfile', 'package.json', `src${path.sep}x.ts`]) assert.ok(inBuildContext(inside), inside);
    for (const outside of ['dist/main.js', 'node_modules/koa/index.js', '.pulumi/stacks/dev.json', 'README.md', 'srcx/a.ts', 'package.json.bak', '../service/src/a.ts', '', 'src2']) {
      assert.ok(!inBuildContext(outside), outside);
    }
  });

  it('reports edits, new files and renames in src/ and the top-level files; nothing from dist/, node_modules/ or others', async () => {
    const seen: string[] = [];
    const watcher = watchBuildContext(dir, (file) => seen.push(file));
    try {
      await pause(100);
      writeFileSync(path.join(dir, 'dist/main.js'), 'y');
      writeFileSync(path.join(dir, 'node_modules/koa/index.js'), 'y');
      writeFileSync(path.join(dir, '.pulumi/state.json'), 'y');
      writeFileSync(path.join(dir, 'README.md'), 'y');
      await pause(300);
      assert.deepEqual(seen, [], 'nothing outside the build context');

      writeFileSync(path.join(dir, 'src/routes/root.ts'), 'changed');
      writeFileSync(path.join(dir, 'src/routes/new.ts'), 'new');
      writeFileSync(path.join(dir, 'package.json.tmp'), '{}');
      renameSync(path.join(dir, 'package.json.tmp'), path.join(dir, 'package.json')); // how editors save
      await pause(300);
      const unique = [...new Set(seen)].sort();
      assert.deepEqual(unique, ['package.json', 'src/routes/new.ts', 'src/routes/root.ts']);
    } finally {
      watcher.close();
    }
  });
});
