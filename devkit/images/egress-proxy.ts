/**
 * The builder's only way out of its network namespace: an HTTP CONNECT proxy on a unix socket
 * that admits tunnels to the npm registry's host on 443 and nothing else. Builds see it as
 * HTTPS_PROXY=http://127.0.0.1:3128 (relayed inside the namespace by dockerd-namespace.ts).
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

/** Hosts builds may reach: the npm registry this machine's npm is configured with. */
export function allowedEgressHosts(): string[] {
  const configured = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).stdout?.trim();
  const host = configured ? new URL(configured).hostname : 'registry.npmjs.org';
  return [...new Set([host, 'registry.npmjs.org'])];
}

export async function startEgressProxy(socketPath: string, allowed: string[], log: (line: string) => void): Promise<http.Server> {
  const server = http.createServer((_request, response) => {
    response.writeHead(403).end('only CONNECT tunnels to the npm registry are allowed\n');
  });
  server.on('connect', (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const [host, port] = (request.url ?? '').split(':');
    if (!allowed.includes(host) || port !== '443') {
      log(`egress refused: CONNECT ${request.url}`);
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(443, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const close = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', () => {
      if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      close();
    });
    client.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  return server;
}
