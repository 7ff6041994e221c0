/**
 * Starts the built service (service/dist/main.js) as its own process, as the
 * image runs it, and resolves once it answers /healthz (whatever the log level).
 * Used by the benchmark, the service tests and the tools' tests.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './paths';
import { freePort } from './ports';
import { supervise, waitReady } from './supervisor';

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
  /** SIGTERM, then the exit code (SIGKILL only if it has not drained after 60 s). */
  stop(): Promise<number | string>;
}

export async function startServiceProcess(env: Record<string, string>, options: { keepLogs?: boolean; nodeArgs?: string[] } = {}): Promise<ServiceProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const service = supervise('service', process.execPath, {
    args: [...(options.nodeArgs ?? []), SERVICE_MAIN],
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: String(port) },
    // Kept only when asked, or the last few.
    keepLines: options.keepLogs ? 'all' : 50,
  });
  const healthy = () => fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.ok, () => false);
  try {
    await waitReady(service, healthy, { what: 'the service to answer /healthz', timeoutMs: 15_000, everyMs: 50 });
  } catch (error) {
    service.kill('SIGKILL');
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: service.pid,
    child: service.child,
    logs: service.lines,
    exited: service.exited,
    kill: (signal = 'SIGTERM') => service.kill(signal),
    stop: () => service.stop(60_000),
  };
}

/** Resident set size of a process, in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}
