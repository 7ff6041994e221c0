/**
 * CPU time a process (or a process and its children) has used, from /proc: how `npm run bench` charges a
 * server for its requests. Linux only.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** CPU time (user + system) a process has used so far, in µs, from /proc (clock ticks, usually 10 ms). */
export function cpuOfPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks / 100) * 1e6;
}

/** The live children of `pid` (every thread's `children` file; a scan of /proc where the kernel has none). */
export function childrenOf(pid: number): number[] {
  try {
    const children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
    return [...new Set(children)];
  } catch {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((other) => {
      try {
        const stat = readFileSync(`/proc/${other}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid; // ppid
      } catch {
        return false; // gone since the listing
      }
    });
  }
}

/**
 * CPU of `pid` and all its live descendants, in µs: a pre-forking server (gunicorn's master and its
 * workers). A child that exits between two readings takes its CPU with it, so this is for servers whose
 * workers live through the measurement.
 */
export function cpuOfTree(pid: number): number {
  let total = cpuOfPid(pid);
  for (const child of childrenOf(pid)) {
    try {
      total += cpuOfTree(child);
    } catch {
      // exited since the listing
    }
  }
  return total;
}
