/**
 * The certificates a node needs beyond the control plane's self-signed serving
 * certificate, made fresh per run with openssl (installed by install-packages.sh):
 * one throw-away CA signing
 *  - front-proxy-client: the API server's identity towards aggregated APIs
 *    (metrics-server trusts requests that carry it, via --requestheader-*), and
 *  - kube-apiserver-kubelet-client (group system:masters): its identity towards the
 *    kubelet, whose x509 authentication trusts the same CA (logs, exec, port-forward).
 * kubeadm and Minikube use two CAs for these; one is enough for a test cluster.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface NodeCerts {
  caCert: string;
  frontProxyCert: string;
  frontProxyKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
}

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
}

export function makeNodeCerts(dir: string): NodeCerts {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=koa-node-ca'], dir);
  writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  const client = (name: string, subject: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '7', '-extfile', 'client.ext'], dir);
  };
  client('front-proxy-client', '/CN=front-proxy-client');
  client('kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client');
  return {
    caCert: path.join(dir, 'ca.crt'),
    frontProxyCert: path.join(dir, 'front-proxy-client.crt'),
    frontProxyKey: path.join(dir, 'front-proxy-client.key'),
    kubeletClientCert: path.join(dir, 'kubelet-client.crt'),
    kubeletClientKey: path.join(dir, 'kubelet-client.key'),
  };
}
