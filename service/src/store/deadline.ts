import { setMaxListeners } from 'node:events';

/**
 * Options that bound one database operation in time, beyond the driver's own timeouts.
 *
 * Why: mongodb 7.9 can wait forever on a write to a pooled connection whose socket the server has just
 * closed. Node destroys the socket on the peer's FIN but emits `close` only later in the loop; a command
 * written in between finds `write()` returning false and waits for a `drain` that never comes, with no
 * socket timeout armed and no error to end it (the connection's own cleanup only ends reads). The
 * request would hang, holding its pool connection. The driver does honour an AbortSignal at that wait
 * (and at every other), though its types declare one only for reads: so every operation gets one.
 * What the caller is told then is the truth: the write may or may not have been applied (504).
 *
 * One signal serves every operation that starts within the same tenth of the deadline, each getting from
 * 1 to 1.1 times it: a signal of its own (AbortSignal.timeout) cost every operation a timer that later
 * fires, with an exception built, long after the operation ended (about 20 µs of a page's 600).
 */
export function withDeadline<T extends object>(deadlineMs: number, options?: T): T {
  return { ...options, signal: sharedSignal(deadlineMs) } as T;
}

const signals = new Map<number, { signal: AbortSignal; until: number }>();

function sharedSignal(deadlineMs: number): AbortSignal {
  const now = Date.now();
  let current = signals.get(deadlineMs);
  if (current === undefined || now >= current.until) {
    const slot = Math.ceil(deadlineMs / 10);
    current = { signal: AbortSignal.timeout(deadlineMs + slot), until: now + slot };
    // Every operation of the slot listens to it: many at once is its purpose, not a leak.
    setMaxListeners(0, current.signal);
    signals.set(deadlineMs, current);
  }
  return current.signal;
}
