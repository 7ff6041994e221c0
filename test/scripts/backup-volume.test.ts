/**
 * `npm run backup -- --list` and `npm run restore -- --from NAME` with a stub kubectl that plays the cluster:
 * the calls they make (the claim, a reader pod that mounts it read-only, exec, the pod deleted), what they
 * print, and their errors with exit codes. The same path on a real node: test/node/backup.test.ts.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isOneLineError, makeArchive, runTool } from './backup-helpers';

const NAME = 'backup-20261206T011700Z.jsonl.gz';

describe('backup --list and restore --from, with a stub kubectl', function () {
  this.timeout(60_000);
  let dir: string;
  let archive: string;
  const calls = () =>
    readFileSync(path.join(dir, 'calls'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { args: string[]; stdin: string });
  const run = (tool: 'backup' | 'restore', args: string[], mode = 'ok') => {
    rmSync(path.join(dir, 'calls'), { force: true });
    return runTool(tool, args, { PATH: `${dir}:${process.env.PATH}`, PULUMI_STACK: 'dev', STUB_MODE: mode });
  };

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'backup-volume-'));
    archive = path.join(dir, NAME);
    makeArchive(archive, 'flask_db', [{ name: 'data', lines: ['{"_id":{"$numberInt":"1"},"v":"one"}', '{"_id":{"$numberInt":"2"},"v":"two"}'] }]);
    const size = statSync(archive).size;
    // get pvc: the claim with its reader-image annotation (or NotFound); create -f -: records the manifest;
    // wait: Ready; exec node dist/list-backups.js: the listing; exec cat: the file (or a cut copy); delete: ok.
    writeFileSync(
      path.join(dir, 'kubectl'),
      `#!/usr/bin/env node
const fs = require('fs');
const args = process.argv.slice(2);
const stdin = args.includes('create') ? fs.readFileSync(0, 'utf8') : '';
fs.appendFileSync(${JSON.stringify(path.join(dir, 'calls'))}, JSON.stringify({ args, stdin }) + '\\n');
const mode = process.env.STUB_MODE;
if (args.includes('pvc')) {
  if (mode === 'no-claim') { process.stderr.write('Error from server (NotFound): persistentvolumeclaims "mongodb-backups" not found\\n'); process.exit(1); }
  process.stdout.write(JSON.stringify({ metadata: { annotations: { 'koa-mongodb/reader-image': 'data-admin:0123456789abcdef' } } }));
} else if (args.includes('create') || args.includes('wait') || args.includes('delete')) {
  process.exit(0);
} else if (args.includes('exec') && args.includes('dist/list-backups.js')) {
  const files = mode === 'empty' ? [] : [{ name: ${JSON.stringify(NAME)}, bytes: ${size}, modified: '2026-12-06T01:17:03.000Z' }];
  process.stdout.write(JSON.stringify(files) + '\\n');
} else if (args.includes('exec') && args.includes('cat')) {
  const bytes = fs.readFileSync(${JSON.stringify(archive)});
  process.stdout.write(mode === 'cut' ? bytes.subarray(0, bytes.length - 10) : bytes);
} else process.exit(1);
`,
    );
    chmodSync(path.join(dir, 'kubectl'), 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--list: starts a read-only reader pod on the claim with the image the claim names, lists, deletes the pod', async () => {
    const listed = await run('backup', ['--list']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^backup: 1 backup on claim mongodb-backups in namespace koa-mongodb \(context minikube\), oldest first/);
    assert.match(listed.stdout, new RegExp(`^  ${NAME.replace(/\./g, '\\.')}  \\d+ bytes  written 2026-12-06T01:17:03Z$`, 'm'));
    assert.match(listed.stdout, new RegExp(`npm run restore -- --from ${NAME.replace(/\./g, '\\.')}`));
    const made = calls();
    const at = (verb: string) => made.findIndex((call) => call.args.includes(verb));
    assert.deepEqual(made[0].args, ['--context', 'minikube', '-n', 'koa-mongodb', 'get', 'pvc', 'mongodb-backups', '-o', 'json']);
    const pod = JSON.parse(made[at('create')].stdin);
    assert.equal(pod.spec.containers[0].image, 'data-admin:0123456789abcdef');
    assert.equal(pod.spec.volumes[0].persistentVolumeClaim.readOnly, true);
    assert.equal(pod.spec.containers[0].volumeMounts[0].readOnly, true);
    const name = pod.metadata.name as string;
    assert.match(name, /^mongodb-backups-reader-[0-9a-f]{6}$/);
    assert.ok(at('create') < at('wait') && at('wait') < at('exec') && at('exec') < at('delete'), made.map((call) => call.args.join(' ')).join('\n'));
    assert.deepEqual(made[at('delete')].args.slice(4), ['delete', 'pod', name, '--wait=false', '--ignore-not-found']);
  });

  it('--list on an empty volume says how to run one now', async () => {
    const listed = await run('backup', ['--list'], 'empty');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^backup: 0 backups on claim mongodb-backups/);
    assert.match(listed.stdout, /kubectl create job --from=cronjob\/mongodb-backups backup-now/);
  });

  it('--from NAME --check: copies the backup through the reader pod and checks it whole (no database needed)', async () => {
    const checked = await run('restore', ['--from', NAME, '--check']);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, new RegExp(`^restore: copied ${NAME.replace(/\./g, '\\.')} \\(\\d+ bytes\\) from claim mongodb-backups`, 'm'));
    assert.match(checked.stdout, /is whole: backup of database flask_db/);
    assert.match(checked.stdout, /checked 1 collection, 2 documents/);
    const cat = calls().find((call) => call.args.includes('cat'))!;
    assert.deepEqual(cat.args.slice(-2), ['cat', `/backups/${NAME}`]);
    assert.ok(calls().some((call) => call.args.includes('delete')), 'the reader pod is deleted');
  });

  it('refuses an unknown name (exit 3), a cut copy (exit 1), and a stack without the claim (exit 1), each in one line', async () => {
    const unknown = await run('restore', ['--from', 'backup-20000101T000000Z.jsonl.gz']);
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.ok(isOneLineError(unknown.stderr), unknown.stderr);
    assert.match(unknown.stderr, new RegExp(`there is no backup backup-20000101T000000Z\\.jsonl\\.gz on claim mongodb-backups .*there are: ${NAME.replace(/\./g, '\\.')}`));
    assert.ok(!calls().some((call) => call.args.includes('cat')), 'nothing read');

    const cut = await run('restore', ['--from', NAME], 'cut');
    assert.equal(cut.code, 1, cut.stderr);
    assert.ok(isOneLineError(cut.stderr), cut.stderr);
    assert.match(cut.stderr, /read \d+ of the \d+ bytes of backup-/);
    assert.ok(calls().some((call) => call.args.includes('delete')), 'the reader pod is deleted after a failure too');

    const noClaim = await run('backup', ['--list'], 'no-claim');
    assert.equal(noClaim.code, 1, noClaim.stderr);
    assert.ok(isOneLineError(noClaim.stderr), noClaim.stderr);
    assert.match(noClaim.stderr, /no backups volume: claim mongodb-backups in namespace koa-mongodb \(context minikube\) does not exist\. Is the stack up/);
  });
});
