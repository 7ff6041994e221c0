/**
 * A throw-away copy of what `npm run up` runs (the script, its helpers, the
 * project and dev stack files) with stub `minikube`, `pulumi`, `kubectl`, `docker`
 * and `getconf` first on PATH (see cli-stub.js), a fresh HOME, and no terminal.
 * With `realPulumi` (a directory holding the real CLI), `pulumi` is the real
 * one and only the other three are stubs (its calls are then not recorded).
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const STUB = path.join(__dirname, 'cli-stub.js');

export interface Profile {
  running: boolean;
  CPUs: number;
  Memory: number;
  CNI: string;
  ContainerRuntime: string;
  Driver: string;
  addons: Record<string, boolean>;
}

export interface MachineState {
  host: { cpus: number; memoryMb: number };
  /** A Docker engine that answers `docker info` (Docker Desktop's VM on a Mac); none when absent. */
  docker?: { cpus: number; memoryMb: number };
  /** configDriver: what `minikube config get driver` answers, if set. */
  minikube: {
    profiles: Record<string, Profile>;
    configDriver?: string;
    /** A line minikube prints before any output (an amd64 minikube on an arm64 Mac does). */
    notice?: string;
    /** A profile whose machine cannot be inspected: the full `profile list` (status check) fails on it. */
    brokenProfile?: string;
  };
  /** login: the backend `pulumi login` chose, if any; whoamiError: how `pulumi whoami` fails otherwise (offline, say). */
  pulumi: { login?: string; whoamiError?: string; stacks: Record<string, string[]>; current?: string; passphrase?: string; upFails?: boolean };
}

export interface Call {
  tool: 'minikube' | 'pulumi' | 'kubectl' | 'docker' | 'getconf';
  args: string[];
  env: Record<string, string>;
  stdin: boolean;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  calls: Call[];
}

export const freshMachine = (): MachineState => ({
  host: { cpus: 8, memoryMb: 32768 },
  minikube: { profiles: {} },
  pulumi: { stacks: {} },
});

export class Sandbox {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'up-script-'));
  readonly project = path.join(this.dir, 'project');
  readonly home = path.join(this.dir, 'home');
  private readonly bin = path.join(this.dir, 'bin');
  private readonly statePath = path.join(this.dir, 'state.json');
  private runs = 0;

  constructor(
    state: MachineState = freshMachine(),
    private readonly realPulumi?: string,
  ) {
    mkdirSync(path.join(this.project, 'scripts', 'lib'), { recursive: true });
    mkdirSync(this.home);
    mkdirSync(this.bin);
    for (const file of ['scripts/minikube-up.sh', 'scripts/diagnose.ts', 'scripts/lib/stack-file.js', 'scripts/lib/minikube-profile.js', 'Pulumi.yaml', 'Pulumi.dev.yaml']) {
      copyFileSync(path.join(ROOT, file), path.join(this.project, file));
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(this.project, 'node_modules'));
    for (const tool of realPulumi ? ['minikube', 'kubectl', 'docker', 'getconf'] : ['minikube', 'pulumi', 'kubectl', 'docker', 'getconf']) {
      const file = path.join(this.bin, tool);
      writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${STUB}" ${tool} "$@"\n`);
      chmodSync(file, 0o755);
    }
    this.state = state;
  }

  /**
   * The real CLI finds its home (logins, workspaces, file://~) from the user
   * database, not from HOME, so it gets one of the sandbox's own.
   */
  get pulumiEnv(): Record<string, string> {
    return { PULUMI_HOME: path.join(this.home, '.pulumi'), PULUMI_SKIP_UPDATE_CHECK: 'true' };
  }

  get state(): MachineState {
    return JSON.parse(readFileSync(this.statePath, 'utf8')) as MachineState;
  }

  set state(value: MachineState) {
    writeFileSync(this.statePath, JSON.stringify(value, null, 2));
  }

  stackFile(stack = 'dev'): string {
    return readFileSync(path.join(this.project, `Pulumi.${stack}.yaml`), 'utf8');
  }

  /**
   * `npm run up -- ...args` with only `env` set (plus PATH and HOME), in a new
   * session: no controlling terminal, as in CI. With `typed`, it runs under
   * `script` on a pseudo-terminal instead, and each passphrase prompt that
   * appears is answered with the next line of `typed` (typed after the prompt,
   * as a person would, so the terminal's echo settings are the script's).
   */
  run(env: Record<string, string> = {}, args: string[] = [], typed?: string[]): Promise<Run> {
    const log = path.join(this.dir, `calls-${++this.runs}.jsonl`);
    writeFileSync(log, '');
    const pathDirs = [this.bin, ...(this.realPulumi ? [this.realPulumi] : []), process.env.PATH];
    const fullEnv = { PATH: pathDirs.join(':'), HOME: this.home, ...this.pulumiEnv, STUB_STATE: this.statePath, STUB_LOG: log, ...env };
    const script = path.join(this.project, 'scripts', 'minikube-up.sh');
    const [command, argv] = typed === undefined ? ['bash', [script, ...args]] : ['script', ['-qec', ['bash', script, ...args].join(' '), '/dev/null']];
    return new Promise((resolve, reject) => {
      const child = spawn(command, argv, { cwd: this.dir, env: fullEnv, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let answered = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const prompts = stdout.match(/passphrase[^\n]*: /g)?.length ?? 0;
        while (typed && answered < Math.min(prompts, typed.length)) child.stdin.write(`${typed[answered++]}\n`);
      });
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      // The real CLI takes seconds per command on a busy machine; the stubs do not.
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), this.realPulumi ? 200_000 : 25_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        const calls = readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Call);
        resolve({ code, stdout, stderr, calls });
      });
      // script(1) ends the session when its input ends, so keep it open until the script exits.
      if (typed === undefined) child.stdin.end();
      else child.on('exit', () => child.stdin.end());
    });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The calls that change something (everything but queries). */
export function changes(calls: Call[]): string[] {
  const queries = [/^minikube (-p \S+ )?status/, /^minikube profile list/, /^minikube (-p \S+ )?config get/, /^docker info/, /^minikube (-p \S+ )?addons list/, /^pulumi whoami/, /^pulumi stack select/, /^pulumi version/, /^kubectl /, /^getconf /];
  return calls.map((call) => `${call.tool} ${call.args.join(' ')}`).filter((line) => !queries.some((query) => query.test(line)));
}

export const pulumiCalls = (calls: Call[]): Call[] => calls.filter((call) => call.tool === 'pulumi');
