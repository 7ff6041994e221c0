/**
 * Starts the built service (service/dist/main.js) as its own process, as the
 * image runs it, and resolves once it listens. Used by the benchmark and the
 * load tools' tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import net from 'node:net';
import { REPO_ROOT } from './ferretdb';

export const SERVICE_MAIN = path.join(REPO_ROOT, 'service', 'dist', 'main.js');

export interface ServiceProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<number | null>;
}

export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [SERVICE_MAIN], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`service exited (${code}) before listening\n${stderr}`))));
  // Whatever the log level, the service is up once /healthz answers.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await Promise.race([fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.ok, () => false), exited]);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`service did not answer /healthz within 15 s\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

/** Resident set size of a process, in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
