/**
 * Builds (once per machine, cached outside the repo) and starts the FerretDB
 * launcher in tools/ferretdb: a MongoDB-wire server on loopback for tests,
 * benchmarks and `npm run db:local`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { hashTree } from './cache';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const TOOL_DIR = path.join(REPO_ROOT, 'tools', 'ferretdb');
export const CACHE_DIR = process.env.KOA_MONGODB_CACHE ?? path.join(os.homedir(), '.cache', 'koa-mongodb');

export function haveGo(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

/** Path of the launcher binary, building it first if its sources changed. */
export function ensureFerretDbBinary(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): string {
  const binary = path.join(CACHE_DIR, `ferretdb-local-${hashTree([TOOL_DIR])}`);
  if (existsSync(binary)) return binary;

  mkdirSync(CACHE_DIR, { recursive: true });
  log(`building FerretDB v1.24.2 launcher into ${binary} (first run on this machine: about a minute)…`);
  const started = Date.now();
  const result = spawnSync('go', ['build', '-trimpath', '-o', binary, '.'], {
    cwd: TOOL_DIR,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, CGO_ENABLED: '0' },
  });
  if (result.status !== 0) {
    throw new Error(`building tools/ferretdb failed (go build exit ${result.status}); see the output above`);
  }
  log(`built FerretDB launcher in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return binary;
}

export interface FerretDbProcess {
  uri: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface FerretDbOptions {
  /** host:port; port 0 picks a free one. */
  listen?: string;
  dataDir: string;
  /** Forward FerretDB's own log lines (stderr) to ours. */
  inheritStderr?: boolean;
}

/** Starts FerretDB and resolves once it listens, with the URI it printed. */
export async function startFerretDb(options: FerretDbOptions): Promise<FerretDbProcess> {
  const binary = ensureFerretDbBinary();
  mkdirSync(options.dataDir, { recursive: true });
  const child = spawn(binary, ['-listen', options.listen ?? '127.0.0.1:0', '-data', options.dataDir], {
    stdio: ['ignore', 'pipe', options.inheritStderr ? 'inherit' : 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });

  const uri = await new Promise<string>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`FerretDB did not start within 30 s\n${stderr}`)), 30_000);
    lines.on('line', (line) => {
      const match = /^ready (\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`FerretDB exited with code ${code} before it was ready\n${stderr}`));
    });
  });

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    uri,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
