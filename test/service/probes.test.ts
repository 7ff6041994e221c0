import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort, startInProcess, uniqueDbName, waitFor, type InProcessService } from './helpers';

/** Opens a connection from `localAddress`, sends one keep-alive request and keeps the socket; resolves when answered or refused. */
function idleKeepAlive(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; answered: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    let done = false;
    const finish = (answered: boolean) => {
      if (done) return;
      done = true;
      resolve({ socket, answered });
    };
    socket.on('data', (chunk) => finish(/^HTTP\/1\.1 200/.test(chunk.toString())));
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

describe('probes where public traffic cannot starve them; one peer holds only its share (issue 17, point 6)', function () {
  this.timeout(60_000);
  let svc: InProcessService;
  let internalPort: number;
  const held: net.Socket[] = [];

  before(async () => {
    internalPort = await freePort();
    svc = await startInProcess({ MONGODB_DB: uniqueDbName('probes'), METRICS_PORT: String(internalPort), MAX_CONNECTIONS: '16', MAX_CONNECTIONS_PER_PEER: '4', KEEP_ALIVE_TIMEOUT_MS: '65000' });
  });
  afterEach(() => {
    for (const socket of held.splice(0)) socket.destroy();
  });
  after(() => svc.close());

  const publicPort = () => Number(new URL(svc.url).port);

  it('/healthz and /readyz answer on the internal port while the public cap is full of idle keep-alive sockets', async () => {
    // 16 peers' worth (127.0.0.1 … 127.0.0.4, four each) fill MAX_CONNECTIONS.
    for (let peer = 1; peer <= 4; peer++) {
      for (let n = 0; n < 4; n++) {
        const { socket, answered } = await idleKeepAlive(publicPort(), `127.0.0.${peer}`);
        held.push(socket);
        assert.ok(answered, `connection ${n} of peer ${peer} served`);
      }
    }
    const extra = await idleKeepAlive(publicPort(), '127.0.0.5');
    held.push(extra.socket);
    assert.equal(extra.answered, false, 'the public cap is full');
    for (const path of ['/healthz', '/readyz']) {
      const res = await fetch(`http://127.0.0.1:${internalPort}${path}`, { signal: AbortSignal.timeout(3000) });
      assert.equal(res.status, 200, path);
    }
    assert.equal((await fetch(`http://127.0.0.1:${internalPort}/metrics`)).status, 200);
  });

  it('one peer holding more than MAX_CONNECTIONS_PER_PEER idle sockets is refused the rest; others are still served', async () => {
    const attempts = [];
    for (let n = 0; n < 16; n++) attempts.push(await idleKeepAlive(publicPort(), '127.0.0.9'));
    held.push(...attempts.map((attempt) => attempt.socket));
    assert.equal(attempts.filter((attempt) => attempt.answered).length, 4, 'four served, the rest refused');
    await waitFor('another peer served', async () => (await idleKeepAlive(publicPort(), '127.0.0.10').then(({ socket, answered }) => (socket.destroy(), answered))), 3000);
  });
});
