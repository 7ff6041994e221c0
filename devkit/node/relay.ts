/**
 * The node's way to the API server, which listens on loopback only: a TCP relay
 * from the host side of the veth (LINK.host, same port) to 127.0.0.1. It runs as a
 * child process of its own, so a busy test process (load generators, synchronous
 * work) never stalls the kubelet's or the pods' API traffic, and it dies with its
 * parent (setpriv --pdeathsig).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

const RELAY = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const server = net.createServer((client) => {
  const upstream = net.connect(Number(port), '127.0.0.1');
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close);
  upstream.on('error', close);
  client.pipe(upstream).pipe(client);
});
server.listen(Number(port), host, () => console.log('listening'));
`;

export async function startApiRelay(host: string, port: number): Promise<ChildProcess> {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, '-e', RELAY, host, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`the API server relay on ${host}:${port} exited (${code}): ${stderr.trim()}`)));
  });
  return child;
}
