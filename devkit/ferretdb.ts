/**
 * FerretDB v1.24.2 (SQLite backend), built once per machine from the stand-in
 * module devkit/go/mongo-standin (cmd/ferretdb-local: built like its mongod,
 * without authentication, reply batches capped at 16 MiB as MongoDB's): a
 * MongoDB-wire server on loopback for the service tests, the benchmark and
 * `npm run db:local`.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ensureGoTool } from './go-build';
import { GO_MODULES, cacheEntry } from './paths';
import { superviseUntilAddress } from './supervisor';

/** Path of the launcher binary, building it first if its sources changed. */
export function ensureFerretDbBinary(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): string {
  const [binary] = ensureGoTool(
    {
      what: 'the FerretDB v1.24.2 launcher',
      firstBuild: 'about a minute',
      into: { file: cacheEntry('ferretdb-local', ['mongo-standin']) },
      build: { cwd: path.join(GO_MODULES, 'mongo-standin'), packages: ['./cmd/ferretdb-local'] },
    },
    log,
  );
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
  const { address: uri, proc: ferret } = await superviseUntilAddress('FerretDB', binary, {
    args: ['-listen', options.listen ?? '127.0.0.1:0', '-data', options.dataDir],
    inheritStderr: options.inheritStderr,
  });
  return {
    uri,
    process: ferret.child,
    async stop() {
      await ferret.stop(5000);
    },
  };
}
