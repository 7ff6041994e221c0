import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { METRICS_PORT } from '../../components/dataService';
import { day2KubectlCommands, tryItBlock } from '../node/readme-commands';
import { ROOT } from './fixtures';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const readme = read('README.md');
const docs = readdirSync(path.join(ROOT, 'docs'))
  .filter((name) => name.endsWith('.md'))
  .map((name) => `docs/${name}`);
/** The user's guide, its changelog and the pages it links, each as its path and text. */
const pages = [{ file: 'README.md', text: readme }, { file: 'CHANGELOG.md', text: read('CHANGELOG.md') }, ...docs.map((file) => ({ file, text: read(file) }))];
const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
const configKeys = new Set(Object.keys((parse(read('Pulumi.yaml')) as { config: Record<string, unknown> }).config));
/** Read by the program but deliberately not declared in Pulumi.yaml (see the comment there). */
configKeys.add('registryPassword');

const INSTALL_AND_TEST = 'npm ci && npm run setup && npm test';
const MAIN_JOB = 'npm ci && npm run setup && npm run up';

/** The command lines of a bash block: neither blank nor comments. */
function commands(block: string): string[] {
  return block.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const body = markdown.replace(/```[\s\S]*?```/g, '');
  for (const [, title] of body.matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = title.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** The README is the guide: its first commands and every command, key and link it names must be real. */
describe('README', () => {
  it('opens with the two commands, the main job and install + test, in its first bash block', () => {
    const start = readme.indexOf('```bash\n');
    assert.ok(start >= 0 && start < readme.indexOf('\n## '), 'the first bash block comes before the first section');
    const first = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    assert.deepEqual(commands(first).sort(), [INSTALL_AND_TEST, MAIN_JOB].sort());
  });

  it("its test command is what CI runs: npm test after npm ci and npm run setup (.ci/run)", () => {
    // The npm commands .ci/run executes, in order (not the ones it only prints).
    const ci = read('.ci/run')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => /^npm /.test(line));
    const steps = INSTALL_AND_TEST.split(' && ');
    let at = 0;
    for (const step of steps) {
      const found = ci.findIndex((line, i) => i >= at && (line === step || line.startsWith(`${step} `)));
      assert.ok(found >= 0, `.ci/run runs \`${step}\` after ${steps.slice(0, steps.indexOf(step)).join(', ') || 'nothing'} (it runs: ${ci.join('; ')})`);
      at = found + 1;
    }
    const development = readme.slice(readme.indexOf('\n## Development'));
    assert.ok(development.length > 1, 'a Development section');
    assert.deepEqual(commands(/```bash\n([\s\S]*?)```/.exec(development)?.[1] ?? ''), [INSTALL_AND_TEST], 'Development starts with the test command');
  });

  it('puts deploying first and development last', () => {
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    assert.equal(sections[0], 'Deploy');
    assert.equal(sections.at(-1), 'Development');
    for (const needed of ['What is deployed', 'Day 2', 'Configuration reference', 'Troubleshooting']) {
      assert.ok(sections.includes(needed), `a section "${needed}"`);
    }
    assert.match(readme, /```mermaid\n/, 'a picture of what is deployed');
  });

  it('stays a front door: at most 350 lines, the references in docs/ and the changes in CHANGELOG.md', () => {
    const lines = readme.split('\n').length - (readme.endsWith('\n') ? 1 : 0);
    assert.ok(lines <= 350, `README.md has ${lines} lines`);
    for (const page of ['docs/configuration.md', 'docs/service.md', 'docs/testing.md', 'CHANGELOG.md']) {
      assert.ok(readme.includes(`](${page}`), `README links ${page}`);
    }
    assert.doesNotMatch(readme, /^## What changed/m, 'what changed is in CHANGELOG.md');
    const changelog = read('CHANGELOG.md');
    assert.equal([...changelog.matchAll(/^## (.+)$/gm)][0]?.[1], 'Unreleased', 'CHANGELOG.md: newest first, Unreleased on top');
  });

  it('keeps the blocks the real-node test runs as copied (test/node/main-job.test.ts)', () => {
    const tryIt = commands(tryItBlock(readme));
    assert.ok(tryIt.some((line) => line.startsWith('URL=$(pulumi stack output url)')) && tryIt.some((line) => line.startsWith('kubectl get all -n koa-mongodb')), tryIt.join('\n'));
    const day2 = day2KubectlCommands(readme);
    assert.ok(day2.length >= 8, `the Day-2 kubectl commands (${day2.length})`);
    assert.ok(day2.some((line) => line.includes(` port-forward deploy/data-service ${METRICS_PORT}:${METRICS_PORT}`)), 'the metrics forward is among them');
  });

  it('names only npm scripts that exist, here, in CHANGELOG.md and in docs/', () => {
    let count = 0;
    for (const { file, text } of pages) {
      for (const [, name] of text.matchAll(/npm run ([\w:-]+)/g)) {
        count += 1;
        assert.ok(scripts[name], `${file}: npm run ${name} is defined in package.json`);
      }
    }
    assert.ok(count >= 10);
  });

  it('links only files and headings that exist, here, in CHANGELOG.md and in docs/', () => {
    let count = 0;
    for (const { file, text } of pages) {
      for (const [, link] of text.matchAll(/\]\((?!https?:)([^)\s]+)\)/g)) {
        count += 1;
        const [target, anchor] = link.split('#');
        const resolved = target === '' ? file : path.join(path.dirname(file), target);
        assert.ok(existsSync(path.join(ROOT, resolved)), `${file}: ${link} exists`);
        if (anchor !== undefined && resolved.endsWith('.md')) {
          assert.ok(anchors(read(resolved)).has(anchor), `${file}: ${link} names a heading of ${resolved}`);
        }
      }
    }
    assert.ok(count >= 20);
  });

  it('names only config keys that Pulumi.yaml declares, here, in CHANGELOG.md and in docs/', () => {
    const named = new Set<string>();
    for (const { text } of pages) {
      for (const [, key] of text.matchAll(/pulumi config (?:set|get)(?: --secret)? ([A-Za-z]\w*)/g)) named.add(key);
    }
    // The key columns of the tables: `| key |` first, or a column headed `config keys`.
    for (const table of pages.flatMap(({ text }) => text.match(/^\|.*\|\n\|[-| ]+\|\n(?:\|.*\|\n)+/gm) ?? [])) {
      const [header, , ...rows] = table.trim().split('\n').map((row) => row.split('|').map((cell) => cell.trim()));
      const column = header[1] === 'key' ? 1 : header.indexOf('config keys');
      if (column < 1) continue;
      for (const row of rows) for (const [, key] of row[column].matchAll(/`([a-z][A-Za-z]+)`/g)) named.add(key);
    }
    assert.ok(named.size >= 20, `found ${named.size} keys`);
    for (const key of named) assert.ok(configKeys.has(key), `${key} is a config key of Pulumi.yaml`);
  });

  it("names the stack's own namespace and objects in its kubectl commands", () => {
    // guide-errata.md quotes the guide's own (wrong) commands.
    const lines = pages
      .filter(({ file }) => file !== 'docs/guide-errata.md')
      .flatMap(({ file, text }) => text.split('\n').filter((line) => /\bkubectl\b/.test(line)).map((line) => ({ file, line })));
    assert.ok(lines.length >= 10);
    for (const { file, line } of lines) {
      for (const [, ns] of line.matchAll(/(?:-n|--namespace) ([\w.-]+)/g)) assert.ok(['koa-mongodb', 'kube-system'].includes(ns), `${file}: ${line}`);
      for (const [, kind, name] of line.matchAll(/\b(deploy|deployment|statefulset|sts|job|cronjob|svc|service)\/([\w-]+)/g)) {
        const ours: Record<string, string[]> = {
          deploy: ['data-service'],
          deployment: ['data-service'],
          statefulset: ['mongodb'],
          sts: ['mongodb'],
          // backup-now: the Job the docs have the user create from the backup CronJob (`create job --from=cronjob/…`).
          job: ['mongodb-users', 'backup-now'],
          cronjob: ['mongodb-backups'],
          svc: ['data-service', 'mongodb'],
          service: ['data-service', 'mongodb'],
        };
        assert.ok(ours[kind].includes(name), `${file}: ${kind}/${name} is an object of the stack: ${line}`);
      }
    }
  });

  it('reads /metrics from the pods\' metrics port, never through the public url (a 404 there)', () => {
    for (const { file, text } of pages) assert.doesNotMatch(text, /(?:url\)|\$URL)"?\/metrics/, `${file} fetches /metrics through the Service`);
    assert.match(readme, new RegExp(`port-forward deploy/data-service ${METRICS_PORT}:${METRICS_PORT}`));
  });
});
