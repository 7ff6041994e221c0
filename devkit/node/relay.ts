/**
 * The node's way to the API server, which listens on loopback only: a TCP relay
 * from the host side of the veth (LINK.host, same port) to 127.0.0.1. It runs as a
 * child process of its own, so a busy test process (load generators, synchronous
 * work) never stalls the kubelet's or the pods' API traffic, and it dies with its
 * parent (setpriv --pdeathsig).
 */
import { supervise, waitReady, type Supervised } from '../supervisor';

/** `node -e RELAY <listen host> <listen port> [<upstream host> <upstream port>]`: plain TCP, both ways. */
export const RELAY = `
const net = require('node:net');
const [host, port, upstreamHost = '127.0.0.1', upstreamPort = port] = process.argv.slice(1);
const server = net.createServer((client) => {
  const upstream = net.connect(Number(upstreamPort), upstreamHost);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close);
  upstream.on('error', close);
  client.pipe(upstream).pipe(client);
});
server.listen(Number(port), host, () => console.log('listening'));
`;

/** The relay as a supervised daemon: ready once it says it listens; it dies with us (pdeathsig). */
export async function startApiRelay(host: string, port: number): Promise<Supervised> {
  const relay = supervise('api-relay', 'setpriv', { args: ['--pdeathsig', 'KILL', '--', process.execPath, '-e', RELAY, host, String(port)] });
  await waitReady(relay, async () => relay.lines.includes('listening'), { what: `the API server relay on ${host}:${port}`, timeoutMs: 15_000, everyMs: 50 });
  return relay;
}
