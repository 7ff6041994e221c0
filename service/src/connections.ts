import type http from 'node:http';
import type net from 'node:net';

interface ConnectionState {
  /** Requests on this connection whose response has not closed yet. */
  active: number;
  /** When it last became idle (or was accepted). */
  idleSince: number;
}

export interface Connections {
  /** Closes connections with no request in progress that have been idle at least `idleMs`. */
  closeIdle(idleMs: number): void;
}

/**
 * Tracks, per connection, whether a request is in progress and since when it
 * has been idle. Node's closeIdleConnections() closes a connection the moment
 * no response is pending, even when the client's next request is already on
 * the wire; draining uses this instead.
 */
export function trackConnections(server: http.Server): Connections {
  const states = new Map<net.Socket, ConnectionState>();
  server.on('connection', (socket: net.Socket) => {
    states.set(socket, { active: 0, idleSince: Date.now() });
    socket.once('close', () => states.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const state = states.get(req.socket);
    if (!state) return;
    state.active++;
    res.once('close', () => {
      state.active--;
      state.idleSince = Date.now();
    });
  });
  return {
    closeIdle(idleMs) {
      const now = Date.now();
      for (const [socket, state] of states) {
        if (state.active === 0 && now - state.idleSince >= idleMs) socket.destroy();
      }
    },
  };
}
