import type http from 'node:http';
import type net from 'node:net';

interface ConnectionState {
  /** Requests on this connection whose response has not closed yet. */
  active: number;
  /** When it last became idle (or was accepted). */
  idleSince: number;
  /** The response being written, until it is finished. */
  response?: http.ServerResponse;
}

export interface Connections {
  /** Closes connections with no request in progress that have been idle at least `idleMs`. */
  closeIdle(idleMs: number): void;
  /** True while a response on this connection has begun and not finished (no other answer may be written into it). */
  answering(socket: net.Socket): boolean;
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
    state.response = res;
    res.once('finish', () => state.response === res && (state.response = undefined));
    res.once('close', () => {
      state.active--;
      state.idleSince = Date.now();
    });
  });
  return {
    answering: (socket) => states.get(socket)?.response?.headersSent === true,
    closeIdle(idleMs) {
      const now = Date.now();
      for (const [socket, state] of states) {
        if (state.active === 0 && now - state.idleSince >= idleMs) socket.destroy();
      }
    },
  };
}
