/**
 * The wing's own helpers that the cluster tests stand on: the process
 * supervisor (readiness, SIGTERM then SIGKILL, log files) and the Go build
 * (binaries appear whole, concurrent builds of one tool do not clash, a failed
 * build leaves nothing behind). A tiny Go module stands in for the real tools,
 * so this needs Go but no module proxy.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureGoTool } from '../../devkit/go-build';
import { REPO_ROOT } from '../../devkit/paths';
import { supervise, waitReady } from '../../devkit/supervisor';

const node = (code: string) => [process.execPath, ['-e', code]] as const;

describe('devkit: the process supervisor', () => {
  it('stops a daemon that ignores SIGTERM with SIGKILL after the grace period', async () => {
    const [file, args] = node("process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('up'); setInterval(() => {}, 1000)");
    const daemon = supervise('stubborn', file, { args: [...args] });
    await waitReady(daemon, async () => daemon.lines.includes('up'), { timeoutMs: 10_000, everyMs: 20 });
    const started = Date.now();
    assert.equal(await daemon.stop(500), 'SIGKILL');
    assert.ok(Date.now() - started >= 450, 'it was given the grace period first');
    assert.ok(daemon.lines.includes('ignoring SIGTERM'), 'SIGTERM was sent first');
    assert.equal(daemon.running(), false);
  });

  it('a daemon does not outlive a test run that is killed (its parent-death signal)', async function () {
    if (process.platform !== 'linux') this.skip();
    // A run that supervises a daemon, then is SIGKILLed (as a CI timeout kills it): it cannot stop its daemon.
    const run = `require('tsx/cjs'); const { supervise } = require(${JSON.stringify(path.join(REPO_ROOT, 'devkit', 'supervisor.ts'))});
      const d = supervise('orphan', process.execPath, { args: ['-e', 'setInterval(() => {}, 1000)'] }); console.log(d.pid); setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', run], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const daemonPid = await new Promise<number>((resolve) => parent.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    };
    assert.ok(alive(daemonPid), 'the daemon runs');
    parent.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (alive(daemonPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(alive(daemonPid), false, 'the daemon went with its killed parent');
  });

  it('stops a well-behaved daemon with SIGTERM alone', async () => {
    const [file, args] = node("console.log('up'); setInterval(() => {}, 1000)");
    const daemon = supervise('polite', file, { args: [...args] });
    await waitReady(daemon, async () => daemon.lines.includes('up'), { timeoutMs: 10_000, everyMs: 20 });
    assert.equal(await daemon.stop(10_000), 'SIGTERM');
  });

  it('fails the wait at once, with the last output, when the daemon exits before it is ready', async () => {
    const [file, args] = node("console.error('bad flag --nope'); process.exit(3)");
    const daemon = supervise('crasher', file, { args: [...args] });
    const started = Date.now();
    await assert.rejects(
      waitReady(daemon, async () => false, { timeoutMs: 30_000, everyMs: 20 }),
      (error: Error) => /crasher exited \(3\) before it was ready/.test(error.message) && error.message.includes('bad flag --nope'),
    );
    assert.ok(Date.now() - started < 5000, 'not after the 30 s timeout');
  });

  it('appends a chatty daemon\'s output to its log file, and shows its tail', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'devkit-supervisor-'));
    try {
      const [file, args] = node("for (let i = 1; i <= 100; i++) console.log('line ' + i); console.error('last words')");
      const daemon = supervise('chatty', file, { args: [...args], logFile: path.join(dir, 'chatty.log') });
      assert.equal(await daemon.exited, 0);
      assert.deepEqual(daemon.lines, [], 'nothing read into memory');
      assert.equal(daemon.tail(3), ['line 100', 'last words', ''].join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('devkit: the Go build', function () {
  this.timeout(5 * 60_000);
  let work: string;
  let module: string;

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'devkit-go-build-'));
    module = path.join(work, 'hello');
    execFileSync('mkdir', ['-p', module]);
    writeFileSync(path.join(module, 'go.mod'), 'module example.com/hello\n\ngo 1.24\n');
    writeFileSync(path.join(module, 'main.go'), 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from go") }\n');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const buildIn = (entry: string) =>
    new Promise<{ code: number; output: string }>((resolve) => {
      const script = `require(${JSON.stringify(path.join(REPO_ROOT, 'devkit', 'go-build.ts'))}).ensureGoTool({ what: 'hello', firstBuild: 'seconds', into: { dir: ${JSON.stringify(entry)}, names: ['hello'] }, build: { cwd: ${JSON.stringify(module)}, packages: ['.'] } })`;
      execFile(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: REPO_ROOT }, (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
      });
    });

  it('two builds of one tool at the same time both succeed, and the binary is whole', async () => {
    const entry = path.join(work, 'cache', 'hello-1234');
    const [first, second] = await Promise.all([buildIn(entry), buildIn(entry)]);
    assert.equal(first.code, 0, first.output);
    assert.equal(second.code, 0, second.output);
    assert.equal(execFileSync(path.join(entry, 'hello'), { encoding: 'utf8' }), 'hello from go\n');
    assert.deepEqual(readdirSync(path.join(work, 'cache')), ['hello-1234'], 'no scratch directory left');
  });

  it('does not build again when the binaries are there', () => {
    const entry = path.join(work, 'cache', 'hello-1234');
    const lines: string[] = [];
    const [binary] = ensureGoTool({ what: 'hello', firstBuild: 'seconds', into: { dir: entry, names: ['hello'] }, build: { cwd: module, packages: ['.'] } }, (line) => lines.push(line));
    assert.equal(binary, path.join(entry, 'hello'));
    assert.deepEqual(lines, []);
  });

  it('builds a single cached file, and a failed build leaves neither a binary nor its scratch', () => {
    const file = path.join(work, 'files', 'hello-local-1234');
    ensureGoTool({ what: 'hello', firstBuild: 'seconds', into: { file }, build: { cwd: module, packages: ['.'] } }, () => undefined);
    assert.equal(execFileSync(file, { encoding: 'utf8' }), 'hello from go\n');

    const broken = path.join(work, 'files', 'broken-1234');
    writeFileSync(path.join(module, 'broken.go'), 'package main\n\nfunc broken() { undefinedName() }\n');
    try {
      assert.throws(() => ensureGoTool({ what: 'broken', firstBuild: 'seconds', into: { file: broken }, build: { cwd: module, packages: ['.'] } }, () => undefined), /go build .* failed/);
    } finally {
      rmSync(path.join(module, 'broken.go'));
    }
    assert.equal(existsSync(broken), false);
    assert.deepEqual(readdirSync(path.join(work, 'files')), ['hello-local-1234']);
  });
});
