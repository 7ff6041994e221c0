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
 */
export function withDeadline<T extends object>(deadlineMs: number, options?: T): T {
  return { ...options, signal: AbortSignal.timeout(deadlineMs) } as T;
}
