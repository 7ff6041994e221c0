import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './fixtures';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** The README is the guide: its first commands and every command and link it names must be real. */
describe('README', () => {
  it('starts with the two set-up commands: install + test, and the main job', () => {
    const first = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    assert.ok(readme.indexOf('```bash') < 200, 'the commands come first');
    const commands = first.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    assert.deepEqual(commands, ['npm ci && npm run setup && npm test', 'npm ci && npm run setup && npm run up']);
  });

  it('names only npm scripts that exist', () => {
    const named = new Set([...readme.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]));
    assert.ok(named.size >= 10);
    for (const name of named) assert.ok(scripts[name], `npm run ${name} is defined`);
  });

  it('links only files that exist', () => {
    const links = [...readme.matchAll(/\]\((?!https?:|#)([^)]+)\)/g)].map((m) => m[1]);
    assert.ok(links.length >= 10);
    for (const link of links) assert.ok(existsSync(path.join(ROOT, link)), `${link} exists`);
  });
});
