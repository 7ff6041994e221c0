/**
 * Polls until `attempt` yields a value (anything but undefined or false), then
 * returns it; throws after `timeoutMs`, naming what was awaited, the last error
 * the attempt threw and any `detail` (say, a process's last log lines).
 */
export async function eventually<T>(
  what: string,
  attempt: () => Promise<T | undefined | false>,
  options: { timeoutMs?: number; everyMs?: number; detail?: () => string } = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 250, detail } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const reason = last ? ` (last error: ${(last as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${reason}${detail ? `\n${detail()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
