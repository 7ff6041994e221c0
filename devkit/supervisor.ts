/**
 * The one way the test infrastructure runs a daemon (FerretDB, etcd and the
 * Kubernetes binaries, the built service): start it with its output in a log
 * file or read line by line, wait until it is ready (failing at once, with its
 * last output, if it exits first), and stop it with SIGTERM, then SIGKILL when
 * it has not exited after a grace period, so no test leaves a process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import readline from 'node:readline';
import { eventually } from './wait';

export interface SuperviseOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append stdout and stderr to this file (for chatty daemons); otherwise they are read line by line. */
  logFile?: string;
  /** Called with each output line, when not logging to a file. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Let stderr through to ours instead of reading it (a daemon run in the foreground for a person). */
  inheritStderr?: boolean;
  /** How many output lines `lines` keeps (the last ones; default 50), or every line. */
  keepLines?: number | 'all';
}

export interface Supervised {
  name: string;
  child: ChildProcess;
  pid: number;
  /** The output lines read so far (the last `keepLines`); empty when logging to a file. */
  lines: string[];
  /** Resolves with the exit code, or the signal's name. */
  exited: Promise<number | string>;
  running(): boolean;
  /** The last lines of output, for error messages. */
  tail(count?: number): string;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how the process ended. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * util-linux's setpriv, to give each daemon a parent-death signal: a test run that is killed (SIGKILL, a
 * CI timeout) cannot stop its daemons, and etcd or an API server then outlived it. Linux only.
 */
const SETPRIV = process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;

export function supervise(name: string, file: string, options: SuperviseOptions = {}): Supervised {
  const logFd = options.logFile ? openSync(options.logFile, 'a') : undefined;
  const [command, args] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...(options.args ?? [])]] : [file, options.args ?? []];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', logFd ?? 'pipe', logFd ?? (options.inheritStderr ? 'inherit' : 'pipe')],
  });
  if (logFd !== undefined) closeSync(logFd); // the child holds its own copy
  const keep = options.keepLines ?? 50;
  const lines: string[] = [];
  const remember = (line: string) => {
    lines.push(line);
    if (keep !== 'all' && lines.length > keep) lines.shift();
  };
  let failed = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    // An exec failure (say, a missing binary) ends it too, never as an unhandled error.
    child.once('error', (error) => {
      failed = true;
      remember(`${name}: ${error.message}`);
      resolve('spawn failed');
    });
  });

  const read = (stream: NodeJS.ReadableStream | null, which: 'stdout' | 'stderr') => {
    // Always drained (a full pipe would block the daemon).
    if (!stream) return;
    readline.createInterface({ input: stream }).on('line', (line) => {
      remember(line);
      options.onLine?.(line, which);
    });
  };
  if (logFd === undefined) {
    read(child.stdout, 'stdout');
    read(child.stderr, 'stderr');
  }

  const running = () => !failed && child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    pid: child.pid ?? -1,
    lines,
    exited,
    running,
    tail(count = 30) {
      if (!options.logFile) return lines.slice(-count).join('\n');
      try {
        return readFileSync(options.logFile, 'utf8').split('\n').slice(-count).join('\n');
      } catch {
        return '';
      }
    },
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    async stop(graceMs = 10_000) {
      if (running()) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const how = await exited;
      clearTimeout(timer);
      return how;
    },
  };
}

/**
 * Waits until `ready` yields a value (see `eventually`); fails at once, with the
 * process's last output, when it exits first, and after `timeoutMs` otherwise.
 */
export function waitReady<T>(
  proc: Supervised,
  ready: () => Promise<T | undefined | false>,
  options: { what?: string; timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  return eventually(options.what ?? proc.name, ready, {
    timeoutMs: options.timeoutMs,
    everyMs: options.everyMs,
    detail: () => proc.tail(),
    giveUp: () => (proc.running() ? undefined : new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready:\n${proc.tail()}`)),
  });
}

/**
 * Starts a daemon that prints `ready <address>` on stdout once it listens (FerretDB's wrapper, the wire
 * stub) and resolves with that address; stops it, and fails with its last output, when it exits first or
 * does not get there within `timeoutMs`.
 */
export async function superviseUntilAddress(
  name: string,
  file: string,
  options: SuperviseOptions & { timeoutMs?: number; graceMs?: number } = {},
): Promise<{ address: string; proc: Supervised }> {
  let address: string | undefined;
  const proc = supervise(name, file, {
    ...options,
    onLine: (line, stream) => {
      const ready = stream === 'stdout' ? /^ready (\S+)/.exec(line) : null;
      if (ready) address = ready[1];
      options.onLine?.(line, stream);
    },
  });
  try {
    await waitReady(proc, async () => address, { timeoutMs: options.timeoutMs ?? 30_000, everyMs: 20 });
  } catch (error) {
    await proc.stop(options.graceMs ?? 5000);
    throw error;
  }
  return { address: address!, proc };
}
