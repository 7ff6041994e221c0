import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTEXT_ENTRIES, contextHash } from '../../components/buildContext';
import { ROOT } from './fixtures';

describe('image content tag', () => {
  const made: string[] = [];
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  const copy = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'context-'));
    made.push(dir);
    for (const entry of CONTEXT_ENTRIES) cpSync(path.join(ROOT, 'service', entry), path.join(dir, entry), { recursive: true });
    return dir;
  };

  it('changes when the service source, its dependencies or the Dockerfile change', () => {
    const dir = copy();
    const before = contextHash(dir);
    assert.match(before, /^[0-9a-f]{16}$/);
    for (const file of ['src/routes/root.ts', 'package-lock.json', 'Dockerfile']) {
      const dirAgain = copy();
      writeFileSync(path.join(dirAgain, file), readFileSync(path.join(dirAgain, file), 'utf8') + '\n// changed\n');
      assert.notEqual(contextHash(dirAgain), before, file);
    }
    const added = copy();
    writeFileSync(path.join(added, 'src', 'new.ts'), 'export {};\n');
    assert.notEqual(contextHash(added), before, 'a new source file');
  });

  it('does not change for what the image does not contain (builds, modules, tests, infrastructure)', () => {
    const dir = copy();
    const before = contextHash(dir);
    mkdirSync(path.join(dir, 'dist'));
    writeFileSync(path.join(dir, 'dist', 'main.js'), 'built');
    mkdirSync(path.join(dir, 'node_modules'));
    writeFileSync(path.join(dir, 'README.md'), 'docs');
    assert.equal(contextHash(dir), before);
  });

  it('.dockerignore lets through exactly the hashed entries', () => {
    const ignore = readFileSync(path.join(ROOT, 'service', '.dockerignore'), 'utf8');
    const allowed = [...ignore.matchAll(/^!([^*\n]+?)\/?$/gm)].map((m) => m[1]);
    assert.deepEqual(allowed.sort(), CONTEXT_ENTRIES.filter((e) => e !== 'Dockerfile' && e !== '.dockerignore').sort());
  });
});
