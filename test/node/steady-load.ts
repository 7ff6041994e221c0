/**
 * Steady load for the rollout tests: a few clients in a loop against one URL, counting answers and
 * failures (any status but the expected one, any network error), until stopped.
 */
export interface SteadyLoad {
  readonly answered: number;
  readonly failures: string[];
  /** Bodies seen, counted (for "the new version answers"). */
  readonly bodies: Map<string, number>;
  stop(): Promise<void>;
}

export function steadyLoad(url: string, options: { clients?: number; pauseMs?: number; expect?: number; body?: (text: string) => string } = {}): SteadyLoad {
  const { clients = 4, pauseMs = 50, expect = 200, body } = options;
  const failures: string[] = [];
  const bodies = new Map<string, number>();
  let answered = 0;
  let running = true;
  const client = async () => {
    while (running) {
      const started = Date.now();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (res.status === expect) {
          answered += 1;
          if (body) bodies.set(body(text), (bodies.get(body(text)) ?? 0) + 1);
        } else failures.push(`${new Date().toISOString()} status ${res.status}: ${text.slice(0, 200)}`);
      } catch (error) {
        // fetch's own message ("fetch failed") says nothing: the cause's code and how long it took do.
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const why = cause ? ` (${cause.code ?? cause.message ?? cause})` : '';
        failures.push(`${new Date().toISOString()} ${(error as Error).message}${why} after ${Date.now() - started} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const loops = Array.from({ length: clients }, client);
  return {
    get answered() {
      return answered;
    },
    failures,
    bodies,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
