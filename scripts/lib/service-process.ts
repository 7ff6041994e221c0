/**
 * Starts the built service (service/dist/main.js) as its own process, as the
 * image runs it, and resolves once it answers /healthz (whatever the log level).
 * Used by the benchmark, the service tests and the tools' tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { REPO_ROOT } from './ferretdb';

export const SERVICE_MAIN = path.join(REPO_ROOT, 'service', 'dist', 'main.js');

export interface ServiceProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Every line the process printed (stdout and stderr), as it comes. */
  logs: string[];
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | string>;
}

export async function startServiceProcess(env: Record<string, string>, options: { keepLogs?: boolean; nodeArgs?: string[] } = {}): Promise<ServiceProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), SERVICE_MAIN], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    // Always drained (a full pipe would block the service); kept only when asked, or the last few.
    readline.createInterface({ input: stream }).on('line', (line) => {
      logs.push(line);
      if (!options.keepLogs && logs.length > 50) logs.shift();
    });
  }
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));

  const deadline = Date.now() + 15_000;
  for (;;) {
    const state = await Promise.race([
      fetch(`http://127.0.0.1:${port}/healthz`).then((res) => (res.ok ? 'up' : 'down'), () => 'down'),
      exited.then(() => 'exited'),
    ]);
    if (state === 'up') break;
    if (state === 'exited') throw new Error(`service exited before listening:\n${logs.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`service did not answer /healthz within 15 s:\n${logs.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    logs,
    exited,
    kill: (signal = 'SIGTERM') => child.kill(signal),
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resident set size of a process, in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}
