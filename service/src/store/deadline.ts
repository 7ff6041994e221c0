/**
 * Options that bound one database operation in time, beyond the driver's own timeouts. Why: mongodb 7.9
 * can wait forever on a write to a pooled connection whose socket the server has just closed (Node destroys
 * it on the FIN but emits `close` later; a command written in between waits for a `drain` that never comes,
 * with no timeout armed). The driver honours an AbortSignal there (its types declare one only for reads),
 * so every operation gets one; the caller is told the truth: the write may have been applied (504).
 */
export function withDeadline<T extends object>(deadlineMs: number, options?: T): T {
  return { ...options, signal: AbortSignal.timeout(deadlineMs) } as T;
}
