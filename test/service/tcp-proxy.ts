import net from 'node:net';

/**
 * A TCP proxy in front of the test database that can be taken down and brought
 * back, so fault tests work against any backend (FerretDB, mongod, Atlas).
 * Down means: not listening (connection refused) and every open link cut.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** While set, the database's replies are swallowed: requests arrive, answers never come back. */
  private silent = false;

  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static forUri(uri: string, port: number): TcpProxy {
    const url = new URL(uri.replace(/^mongodb:/, 'http:'));
    return new TcpProxy(port, { host: url.hostname, port: Number(url.port || 27017) });
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      // Accepted while going down (after the sockets were cut): cut too, or server.close() would wait for it.
      if (this.server !== server) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!this.silent) client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    }).catch((error: unknown) => {
      this.server = undefined;
      throw error;
    });
  }

  /** The database keeps receiving (and applying) commands, but no reply reaches the client. */
  silence(): void {
    this.silent = true;
  }

  /** Replies flow again; links that lost replies are cut (their streams are out of step). */
  unsilence(): void {
    this.silent = false;
    for (const socket of this.sockets) socket.destroy();
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}
