/**
 * The README's Day-2 kubectl commands, as a user copies them: read from the README's bash blocks (so a
 * command edited there is the command tested), run through bash with kubectl first on PATH. Commands
 * that follow (`-f`, `--watch`) are read for a few seconds and stopped, as a user's Ctrl-C would.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureKubectl } from '../../devkit/kubectl';
import { REPO_ROOT } from '../../devkit/paths';

/** `env` with kubectl (built once per machine, devkit/kubectl.ts) first on PATH, as a user has it. */
export function withKubectl(env: NodeJS.ProcessEnv, log: (line: string) => void): NodeJS.ProcessEnv {
  return { ...env, PATH: `${path.dirname(ensureKubectl(log))}${path.delimiter}${env.PATH}` };
}

/** Every `kubectl …` line in the bash blocks of the README's "Day 2" section (continuations joined, comments dropped). */
export function day2KubectlCommands(readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')): string[] {
  const section = readme.slice(readme.indexOf('\n## Day 2'), readme.indexOf('\n## ', readme.indexOf('\n## Day 2') + 1));
  const blocks = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((match) => match[1]);
  const commands: string[] = [];
  for (const block of blocks) {
    const joined = block.replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const command = line.replace(/\s+#\s.*$/, '').trim();
      if (command.startsWith('kubectl ')) commands.push(command);
    }
  }
  return commands;
}

/** The bash block after "**Then try it.**": the exports, the url, the curls and `kubectl get all`, as one script. */
export function tryItBlock(readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')): string {
  const from = readme.indexOf('**Then try it.**');
  const block = /```bash\n([\s\S]*?)```/.exec(readme.slice(from));
  if (from < 0 || !block) throw new Error('README: no bash block after "Then try it."');
  return block[1];
}

export interface CommandRun {
  code: number | null;
  output: string;
  /** Stopped by us after `followMs` (a command that follows). */
  stopped: boolean;
}

/** Runs one command line with bash; a following command is stopped after `followMs`, or once `until` matches. */
export function runCommand(command: string, env: NodeJS.ProcessEnv, options: { followMs?: number; until?: RegExp; timeoutMs?: number; cwd?: string } = {}): { done: Promise<CommandRun>; stop(): void } {
  let stopNow = () => {};
  const done = new Promise<CommandRun>((resolve) => {
    const child = spawn('bash', ['-c', command], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let stopped = false;
    const stop = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopped = true;
      process.kill(-child.pid!, 'SIGINT');
    };
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (options.until?.test(output)) stop();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    stopNow = stop;
    const timer = setTimeout(stop, options.followMs ?? options.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, stopped });
    });
  });
  return { done, stop: () => stopNow() };
}
