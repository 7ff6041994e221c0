import { setMaxListeners } from 'node:events';

/**
 * Options that bound one database operation in time, beyond the driver's own timeouts. Why: mongodb 7.9
 * can wait forever on a write to a pooled connection whose socket the server has just closed (Node destroys
 * it on the FIN but emits `close` later; a command written in between waits for a `drain` that never comes,
 * with no timeout armed). The driver honours an AbortSignal there (its types declare one only for reads),
 * so every operation gets one; the caller is told the truth: the write may have been applied (504).
 *
 * One signal serves the operations that start within the same tenth of the deadline (each gets 1 to 1.1
 * times it): one of their own cost each a timer that fired, long after, with an exception (about 20 µs).
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
