/**
 * The same `pulumi up` as `npm run up`, run again and again without asking again.
 *
 * `npm run up` (scripts/minikube-up.sh) decides the backend and the passphrase on every run and asks
 * for the passphrase on the terminal each time. `npm run dev` makes the same two decisions once,
 * the same way (the rules are the script's; see its "Which Pulumi backend" and "The passphrase"),
 * runs the script once at the start with the passphrase in its environment (so it does not ask),
 * and then runs `pulumi up` itself for each change: the same program, stack, backend and
 * passphrase, without the script's Minikube checks, which do not change between two saves.
 * The passphrase lives only in this process's memory and its children's environment: never on a
 * command line, in a file or in the output.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { askHidden } from './prompt';

export interface Session {
  root: string;
  stack: string;
  /** The environment of every pulumi command and of the up script. */
  env: NodeJS.ProcessEnv;
  /** Where Pulumi and its plugins write temp files (the provider leaves a kubeconfig per run): removed by close(). */
  tmpdir: string;
  close(): void;
}

const stackFile = (root: string, stack: string, ...args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['scripts/lib/stack-file.js', stack, ...args], { cwd: root }, (error, stdout) => (error ? reject(error) : resolve(stdout.trim()))),
  );

/** minikube-up.sh's backend rule: PULUMI_BACKEND_URL, else your `pulumi login`, else <project>/.pulumi. */
async function chooseBackend(root: string, env: NodeJS.ProcessEnv): Promise<{ url: string; local: boolean }> {
  if (env.PULUMI_BACKEND_URL) return { url: env.PULUMI_BACKEND_URL, local: false };
  const whoami = await new Promise<{ ok: boolean; out: string }>((resolve) =>
    execFile('pulumi', ['whoami', '--verbose'], { cwd: root, env }, (error, stdout, stderr) => resolve({ ok: !error, out: `${stdout}${stderr}` })),
  );
  if (whoami.ok) return { url: /^Backend URL: *(.*)$/m.exec(whoami.out)?.[1] ?? '', local: false };
  if (/not logged in|must be set for login|PULUMI_ACCESS_TOKEN/i.test(whoami.out)) return { url: `file://${path.join(root, '.pulumi')}`, local: true };
  throw new Error(`\`pulumi whoami\` failed: ${whoami.out.split('\n').slice(0, 3).join(' ')}`);
}

/** Backend and passphrase, decided once for the whole session. */
export async function openSession(root: string, stack: string, say: (line: string) => void): Promise<Session> {
  const env: NodeJS.ProcessEnv = { ...process.env, PULUMI_SKIP_UPDATE_CHECK: process.env.PULUMI_SKIP_UPDATE_CHECK ?? 'true' };
  const backend = await chooseBackend(root, env);
  const provider = await stackFile(root, stack, 'secrets-provider');
  const needsPassphrase = provider === 'passphrase' || (provider === '' && !backend.url.startsWith('https://'));
  const given = env.PULUMI_CONFIG_PASSPHRASE !== undefined || Boolean(env.PULUMI_CONFIG_PASSPHRASE_FILE);
  if (needsPassphrase && !given) {
    if (provider === 'passphrase') {
      env.PULUMI_CONFIG_PASSPHRASE = await askHidden(`passphrase of stack ${stack} (asked once for this session)`);
    } else {
      const first = await askHidden(`choose a passphrase for the secrets of stack ${stack}`);
      if ((await askHidden('the same passphrase again')) !== first) throw new Error('the two passphrases differ; nothing was changed');
      env.PULUMI_CONFIG_PASSPHRASE = first;
    }
  }
  // Our own pulumi commands only; the up script decides the backend itself, the same way.
  const pulumiEnv = backend.local ? { PULUMI_BACKEND_URL: backend.url } : {};
  if (backend.local) say(`Pulumi state in ${backend.url.slice('file://'.length)} (not logged in to a backend; as npm run up does)`);
  const tmpdir = mkdtempSync(path.join(os.tmpdir(), 'koa-dev-'));
  return {
    root,
    stack,
    env: { ...env, ...pulumiEnv, TMPDIR: tmpdir },
    tmpdir,
    close: () => rmSync(tmpdir, { recursive: true, force: true }),
  };
}

/**
 * A child running in a process group of its own: the terminal's Ctrl-C reaches only dev, which
 * passes exactly one interrupt on (pulumi cancels cleanly on the first and stops hard on the second).
 */
export interface Running {
  child: ChildProcess;
  done: Promise<number>;
  /** SIGINT to the child's whole group, as a terminal's Ctrl-C would send it. */
  interrupt(): void;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Running {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', onLine ? 'pipe' : 'inherit', onLine ? 'pipe' : 'inherit'] });
  if (onLine) {
    for (const stream of [child.stdout!, child.stderr!]) readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
  }
  const done = new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
  const interrupt = () => {
    try {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGINT');
    } catch {
      // already gone
    }
  };
  return { child, done, interrupt };
}

/** `npm run up -- <args>`: the whole main job (Minikube, stack, config, pulumi up), once. */
export function runUpScript(session: Session, args: string[]): Running {
  // Not PULUMI_BACKEND_URL: the script's own choice, which is the same one, keeps its own messages.
  const env = { ...session.env };
  if (!process.env.PULUMI_BACKEND_URL) delete env.PULUMI_BACKEND_URL;
  return run('bash', ['scripts/minikube-up.sh', ...args], session.root, env);
}

/** What one `pulumi up` did, timed from its own progress lines. */
export interface UpTimes {
  /** From the start of `pulumi up` to its end. */
  totalMs: number;
  /** The image resource's step (minikube image build, or docker build and push), if it ran. */
  buildMs?: number;
  /** The Deployment's update, which Pulumi awaits until the rollout is complete, if it ran. */
  rolloutMs?: number;
}

// ` ++ pulumi-nodejs:dynamic:Resource data-service creating replacement (0s) [diff: ~imageName]`
const STEP = /^\s*[-+~=<>]*\s+(\S+:\S*:\S+)\s+(\S+)\s+(creating|created|updating|updated|replacing|replaced)\b/;
const IMAGE_TYPES = /^(pulumi-nodejs:dynamic:Resource|docker:index\/image:Image)$/;
const DEPLOYMENT_TYPE = 'kubernetes:apps/v1:Deployment';
// eslint-disable-next-line no-control-regex
export const stripAnsi = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, '');

/** Times the image build and the Deployment's rollout from a stream of `pulumi up` output lines. */
export class StepClock {
  private readonly started = new Map<string, number>();
  readonly times: { buildMs?: number; rolloutMs?: number } = {};

  constructor(private readonly now: () => number = Date.now) {}

  line(raw: string): void {
    const match = STEP.exec(stripAnsi(raw));
    if (!match) return;
    const [, type, name, verb] = match;
    const key = `${type} ${name}`;
    const at = this.now();
    if (verb.endsWith('ing')) {
      if (!this.started.has(key)) this.started.set(key, at);
      return;
    }
    const since = this.started.get(key);
    if (since === undefined) return;
    if (IMAGE_TYPES.test(type)) this.times.buildMs = (this.times.buildMs ?? 0) + (at - since);
    if (type === DEPLOYMENT_TYPE) this.times.rolloutMs = (this.times.rolloutMs ?? 0) + (at - since);
    this.started.delete(key);
  }
}

/** One `pulumi up --yes --skip-preview` of the stack, its output passed to `onLine`. */
export function pulumiUp(session: Session, onLine: (line: string) => void, color: boolean): Running & { times: Promise<UpTimes> } {
  const clock = new StepClock();
  const started = Date.now();
  const args = ['up', '--yes', '--skip-preview', '--stack', session.stack, `--color=${color ? 'always' : 'never'}`];
  // Between two saves only service/ changed, and the program (index.ts, components/) was type-checked
  // by the first up: transpiled only, its start is seconds shorter on a small machine. Your own
  // PULUMI_NODEJS_TRANSPILE_ONLY wins.
  const env = { PULUMI_NODEJS_TRANSPILE_ONLY: 'true', ...session.env };
  const running = run('pulumi', args, session.root, env, (line) => {
    clock.line(line);
    onLine(line);
  });
  return { ...running, times: running.done.then(() => ({ totalMs: Date.now() - started, ...clock.times })) };
}

/** The stack's outputs (`pulumi stack output --json`; secrets stay hidden). */
export function stackOutputs(session: Session): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    execFile('pulumi', ['stack', 'output', '--json', '--stack', session.stack], { cwd: session.root, env: session.env }, (error, stdout, stderr) =>
      error ? reject(new Error(`pulumi stack output failed: ${stderr.trim() || error.message}`)) : resolve(JSON.parse(stdout) as Record<string, unknown>),
    ),
  );
}

/** A plain config value of the stack, read from its settings file (no passphrase needed). */
export const stackValue = (session: Session, key: string) => stackFile(session.root, session.stack, 'value', key);
