/**
 * One local port (127.0.0.1:5000) that keeps answering across rollouts.
 *
 * `kubectl port-forward svc/x` picks ONE pod when it starts and dies with it, so every rollout
 * breaks it (skaffold#2408, tilt#6653). Here the local listener is ours, and each incoming
 * connection gets a tunnel of its own to a pod that is Ready now:
 * - pods of the newest rollout first (so a change is seen as soon as one new pod is Ready), old
 *   ones only while no new one is; never a pod that is being deleted (it is draining);
 * - a tunnel that cannot reach its pod (the pod went between the choice and the dial, its port is
 *   not open) is retried on another pod with the bytes the client already sent, before the client
 *   has seen anything; so is an idempotent request on a kept-alive connection that its (draining)
 *   pod closed just as the request came, on the same client connection;
 * - with no Ready pod at all (a restart of everything), a connection waits for one rather than
 *   being refused.
 * How a tunnel is made is the caller's (`dial`): the API server's pod portforward in dev.ts, plain
 * TCP in the tests.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { PodInfo, PodSet } from './pods';

/** An error a tunnel reports when its pod could not be reached at all, so nothing reached the pod. */
export class Unreachable extends Error {
  readonly unreachable = true;
}

/** An idempotent request (RFC 9110, 9.2.2) at the start of these bytes. */
const idempotent = (bytes: Buffer[]) => /^(GET|HEAD|OPTIONS|TRACE|PUT|DELETE) /.test(Buffer.concat(bytes).subarray(0, 16).toString('latin1'));
const isUnreachable = (error: unknown) => (error as { unreachable?: boolean } | undefined)?.unreachable === true;

export type Dial = (pod: PodInfo) => Promise<Duplex>;

export interface ForwardOptions {
  pods: PodSet;
  dial: Dial;
  port: number;
  host?: string;
  /** How long a connection waits for a Ready pod when there is none. */
  waitForPodMs?: number;
  log?: (line: string) => void;
}

// A request this large is not held for a retry (it goes through; only its retry is lost).
const MAX_REPLAY_BYTES = 1 << 20;
const MAX_ATTEMPTS = 4;

/** The pod a new connection goes to: round robin over the Ready pods of the newest rollout. */
export function choosePod(pods: PodInfo[], exclude: ReadonlySet<string>, turn: number): PodInfo | undefined {
  const ready = pods.filter((pod) => pod.ready && !pod.deleting && !exclude.has(pod.name));
  if (ready.length === 0) return undefined;
  const newest = ready.reduce((a, b) => (b.created > a.created ? b : a));
  const candidates = ready.filter((pod) => pod.rollout === newest.rollout).sort((a, b) => a.name.localeCompare(b.name));
  return candidates[turn % candidates.length];
}

export class Forward {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly tunnels = new Set<Duplex>();
  private readonly byClientPort = new Map<number, string>();
  private turn = 0;
  private closing = false;
  /** Connections handled, retried on another pod, and given up on (the client saw a reset). */
  readonly stats = { connections: 0, retried: 0, failed: 0 };

  constructor(private readonly options: ForwardOptions) {}

  /** Starts listening; resolves with the port (useful with port 0). */
  listen(): Promise<number> {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => void this.handle(socket));
    this.server = server;
    const host = this.options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new Error(portTaken(host, this.options.port)) : error);
      server.once('error', failed);
      server.listen(this.options.port, host, () => {
        server.off('error', failed);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Which pod the live connection from this client port is tunnelled to. */
  podFor(clientPort: number): string | undefined {
    return this.byClientPort.get(clientPort);
  }

  /** Stops listening and ends every connection and tunnel. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    for (const socket of this.sockets) socket.destroy();
    for (const tunnel of this.tunnels) tunnel.destroy();
    await closed;
  }

  private async handle(socket: net.Socket): Promise<void> {
    this.stats.connections += 1;
    this.sockets.add(socket);
    const clientPort = socket.remotePort ?? 0;
    // What the client sent since the pod last sent anything: the request it is waiting on.
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let answered = false; // a pod has answered on this connection (it is a kept-alive one now)
    let tunnel: Duplex | undefined;
    let closed = false;
    socket.on('data', (chunk: Buffer) => {
      if (pendingBytes <= MAX_REPLAY_BYTES) pending.push(chunk);
      pendingBytes += chunk.length;
      if (tunnel && !tunnel.write(chunk)) socket.pause();
    });
    socket.pause(); // nothing is read until there is somewhere to send it
    socket.on('error', () => undefined); // a client that resets: its tunnel goes in 'close'
    socket.on('close', () => {
      closed = true;
      tunnel?.destroy();
      this.sockets.delete(socket);
      this.byClientPort.delete(clientPort);
    });

    const tried = new Set<string>();
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !closed && !this.closing; attempt += 1) {
      const pod = await this.nextPod(tried);
      if (!pod || closed || this.closing) break;
      tried.add(pod.name);
      let candidate: Duplex;
      try {
        candidate = await this.options.dial(pod);
      } catch (error) {
        this.note(attempt, pod, error);
        continue;
      }
      if (closed || this.closing) {
        candidate.destroy();
        break;
      }
      tunnel = candidate;
      this.tunnels.add(candidate);
      this.byClientPort.set(clientPort, pod.name);
      const { error } = await this.carry(socket, candidate, pending, () => {
        answered = true;
        pending.length = 0;
        pendingBytes = 0;
      });
      this.tunnels.delete(candidate);
      tunnel = undefined;
      if (closed) return;
      if (pendingBytes === 0 && answered && !error) {
        // The pod closed its side after its answer (`Connection: close` while draining): so do we.
        socket.end();
        return;
      }
      // Sent again elsewhere only when the pod cannot have acted on it: the tunnel never reached the
      // pod; or nothing was sent yet; or a pod closed a kept-alive connection as the client's next
      // request was on its way (a draining pod closing an idle connection; the hop through the API
      // server widens that race), and that request is idempotent: what an HTTP client itself may
      // retry (RFC 9110, 9.2.2). A POST that may have been received is never sent twice.
      const raced = answered && !error && idempotent(pending);
      if (pendingBytes > MAX_REPLAY_BYTES || !(isUnreachable(error) || pendingBytes === 0 || raced)) {
        this.options.log?.(`forward: connection to ${pod.name} ended ${error ? `with ${error.message}` : 'without an answer'}; not retried`);
        break;
      }
      this.note(attempt, pod, error);
    }
    if (!closed) {
      if (!this.closing) this.stats.failed += 1;
      socket.destroy();
    }
  }

  private note(attempt: number, pod: PodInfo, error: unknown): void {
    this.stats.retried += 1;
    if (attempt === 0) this.options.log?.(`forward: ${pod.name} unreachable (${(error as Error | undefined)?.message ?? 'closed'}); trying another pod`);
  }

  /** A Ready pod not tried yet; with none, waits for one to become Ready. */
  private async nextPod(tried: ReadonlySet<string>): Promise<PodInfo | undefined> {
    const pods = this.options.pods;
    const untried = (pod: PodInfo) => pod.ready && !pod.deleting && !tried.has(pod.name);
    const now = choosePod(pods.list(), tried, this.turn++);
    if (now) return now;
    if (tried.size > 0) {
      // Every Ready pod failed this connection: a moment for a new one, else the same ones again.
      await pods.waitFor(untried, 500);
      return choosePod(pods.list(), tried, this.turn++) ?? choosePod(pods.list(), new Set(), this.turn++);
    }
    await pods.waitFor(untried, this.options.waitForPodMs ?? 30_000);
    return choosePod(pods.list(), tried, this.turn++);
  }

  /** Pipes socket ⇄ tunnel (the pending bytes first) until the tunnel ends; onData for each chunk the pod sends. */
  private carry(socket: net.Socket, tunnel: Duplex, pending: Buffer[], onData: () => void): Promise<{ error?: Error }> {
    return new Promise((resolve) => {
      let error: Error | undefined;
      for (const chunk of pending) tunnel.write(chunk);
      tunnel.on('drain', () => socket.resume());
      tunnel.on('data', (chunk: Buffer) => {
        onData();
        if (!socket.write(chunk)) {
          tunnel.pause();
          socket.once('drain', () => tunnel.resume());
        }
      });
      tunnel.on('error', (e: Error) => {
        error = e;
      });
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        resolve({ error });
      };
      tunnel.on('end', finish);
      tunnel.on('close', finish);
      socket.resume();
    });
  }
}

/** One line with the fix for a local port someone else holds (on macOS, AirPlay Receiver holds 5000). */
export function portTaken(host: string, port: number): string {
  return `${host}:${port} is taken by another program (on macOS, AirPlay Receiver listens on 5000): run \`DEV_PORT=${port === 5050 ? 5051 : 5050} npm run dev\`, or turn AirPlay Receiver off (System Settings → General → AirDrop & Handoff)`;
}
