/**
 * Polls until `attempt` yields a value (anything but undefined or false), then
 * returns it; throws after `timeoutMs`, naming what was awaited, the last error
 * the attempt threw and any `detail` (say, a process's last log lines). When
 * `giveUp` returns an error (say, the process being awaited has exited), that
 * error is thrown at once instead of waiting out the timeout.
 */
export async function eventually<T>(
  what: string,
  attempt: () => Promise<T | undefined | false>,
  options: { timeoutMs?: number; everyMs?: number; detail?: () => string; giveUp?: () => Error | undefined } = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 250, detail, giveUp } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    const fatal = giveUp?.();
    if (fatal) throw fatal;
    if (Date.now() > deadline) {
      const reason = last ? ` (last error: ${(last as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${reason}${detail ? `\n${detail()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
