/**
 * What `npm run backup` and `npm run restore` share: flags, the one-line errors and their exit codes,
 * figures in words, and the progress line.
 *
 * Exit codes: 0 done; 1 failed (the server refused or went away; a restore undid its work);
 * 2 bad arguments; 3 the file is no whole backup (missing, truncated, damaged, altered; nothing written);
 * 4 restore refused: the database holds documents and --drop was not given (nothing written).
 */
import path from 'node:path';
import { MongoError } from 'mongodb';
import { ArchiveError } from '../../admin/src/backup/archive';
import { RefusedError, RestoreFailed, firstLine } from '../../admin/src/backup/load';
import { UsageError } from './target';

/**
 * A path as the user typed it: `npm run <tool>` runs in the project's root, and says in INIT_CWD where it
 * was started from; run any other way, the current directory.
 */
export function userPath(file: string, tool: string): string {
  const base = process.env.npm_lifecycle_event === tool && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  return path.resolve(base, file);
}

export const EXIT = { ok: 0, failed: 1, usage: 2, archive: 3, refused: 4 } as const;

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof ArchiveError) return EXIT.archive;
  if (error instanceof RefusedError) return EXIT.refused;
  return EXIT.failed;
}

/** One line, whatever failed: never a stack trace. */
export function errorLine(tool: string, error: unknown): string {
  const message = firstLine(error);
  if (error instanceof MongoError && !(error instanceof RestoreFailed)) {
    const name = error.name;
    if (name === 'MongoServerSelectionError' || name === 'MongoNetworkError' || name === 'MongoNetworkTimeoutError') {
      return `${tool}: cannot reach the database server (${message})`;
    }
    return `${tool}: the database server refused: ${message}`;
  }
  if (error instanceof ArchiveError) return `${tool}: refused: ${message}; nothing was written`;
  if (error instanceof RestoreFailed) return `${tool}: failed: ${message}${/nothing changed|undone|interrupted an/.test(message) ? '' : '; the database is as it was before'}`;
  return `${tool}: ${message}`;
}

export const mb = (bytes: number) => (bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1)} MB`);
export const seconds = (ms: number) => `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
/** Plain digits (no separators), so that scripts can read them too. */
export const count = (n: number) => String(n);
/** An exact byte count, and in kB/MB when large: "32512345 bytes (32.5 MB)". */
export const bytes = (n: number) => `${n} bytes${n >= 10_000 ? ` (${mb(n)})` : ''}`;
export const plural = (n: number, word: string, many = `${word}s`) => `${count(n)} ${n === 1 ? word : many}`;

/** documents/s and MB/s over `ms`. */
export function rates(documents: number, bytes: number, ms: number): string {
  const s = Math.max(ms, 1) / 1000;
  return `${count(Math.round(documents / s))} documents/s, ${(bytes / 1e6 / s).toFixed(1)} MB/s`;
}

/**
 * The progress line, on stderr: rewritten in place on a terminal, otherwise a new line every few seconds.
 * Nothing for work that ends within the first second.
 */
export class Progress {
  private last = 0;
  private shown = false;
  private readonly started = Date.now();
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly everyMs = stream.isTTY ? 250 : 3000,
  ) {}

  update(text: string): void {
    const now = Date.now();
    if (now - this.started < 1000 || now - this.last < this.everyMs) return;
    this.last = now;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${text}`);
    } else {
      this.stream.write(`${text}\n`);
    }
    this.shown = true;
  }

  /** Ends an in-place line before the summary is printed. */
  done(): void {
    if (this.shown && this.stream.isTTY) this.stream.write('\r\x1b[2K');
  }
}

/** Runs a tool's main: its exit code, or its one-line error and that error's code. */
export function runTool(tool: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? EXIT.ok;
    },
    (error: unknown) => {
      process.stderr.write(`${errorLine(tool, error)}\n`);
      if (process.env.BACKUP_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
      process.exitCode = exitCodeOf(error);
    },
  );
}
