/**
 * The one way a Go tool is built from the Go module proxy into the per-machine
 * cache: once, when a binary of its cache entry (keyed by the content hash of
 * its wrapper module, see paths.ts) is missing. `go build` writes into a fresh
 * temporary directory beside the target and each binary is then renamed into
 * place: a rename is atomic, so a reader, or a second build running at the same
 * time, sees no binary or a whole one, never a half-written file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

export function haveGo(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

/** Runs `go` with cgo off (static binaries); throws naming the command when it fails. */
export function go(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): void {
  const result = spawnSync('go', args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CGO_ENABLED: '0', ...env } });
  if (result.status !== 0) throw new Error(`go ${args.join(' ')} (in ${cwd}) failed with exit ${result.status}; see the output above`);
}

export interface GoBuild {
  /** The module to build in: a wrapper under devkit/go, or a module prepared from the proxy. */
  cwd: string;
  /** Packages with a main; each gives a binary named after the last element of its path. */
  packages: string[];
  ldflags?: string;
}

export interface GoTool {
  /** What is built, for the log. */
  what: string;
  /** How long a first build takes, for the log. */
  firstBuild: string;
  /** Where the binaries go: the names expected in a cache directory, or one cached file (one package). */
  into: { dir: string; names: string[] } | { file: string };
  /** The build; a function when its module must first be prepared (fetched, patched), which only happens when building. */
  build: GoBuild | (() => GoBuild);
}

/** The paths of the tool's binaries, building them first when one is missing. */
export function ensureGoTool(tool: GoTool, log: (line: string) => void = console.log): string[] {
  const binaries = 'file' in tool.into ? [tool.into.file] : tool.into.names.map((name) => path.join((tool.into as { dir: string }).dir, name));
  if (binaries.every((binary) => existsSync(binary))) return binaries;

  const entry = 'file' in tool.into ? tool.into.file : tool.into.dir;
  log(`building ${tool.what} from the Go module proxy into ${entry} (first run on this machine: ${tool.firstBuild})…`);
  const started = Date.now();
  const build = typeof tool.build === 'function' ? tool.build() : tool.build;
  mkdirSync(path.dirname(entry), { recursive: true });
  const scratch = mkdtempSync(path.join(path.dirname(entry), '.build-')); // beside the entry: same file system, so rename works
  try {
    const output = 'file' in tool.into ? path.join(scratch, path.basename(tool.into.file)) : scratch + path.sep;
    go(['build', '-trimpath', '-ldflags', build.ldflags ?? '', '-o', output, ...build.packages], build.cwd);
    if ('file' in tool.into) {
      renameSync(output, tool.into.file);
    } else {
      mkdirSync(tool.into.dir, { recursive: true });
      for (const name of readdirSync(scratch)) renameSync(path.join(scratch, name), path.join(tool.into.dir, name));
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const missing = binaries.filter((binary) => !existsSync(binary));
  if (missing.length > 0) throw new Error(`go build of ${tool.what} did not produce ${missing.join(', ')}`);
  log(`built ${tool.what} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return binaries;
}
