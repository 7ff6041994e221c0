/**
 * What the program needs to learn from the machine it runs on: where the
 * Minikube node is, and how to reach Minikube's Docker daemon.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';

interface KubeconfigFile {
  contexts?: Array<{ name: string; context?: { cluster?: string } }>;
  clusters?: Array<{ name: string; cluster?: { server?: string } }>;
}

/** Kubeconfig files in the order kubectl reads them. */
export function kubeconfigPaths(explicit?: string): string[] {
  if (explicit) return [explicit];
  const fromEnv = process.env.KUBECONFIG;
  if (fromEnv) return fromEnv.split(path.delimiter).filter(Boolean);
  return [path.join(os.homedir(), '.kube', 'config')];
}

/** Host of the API server of `context` (e.g. 192.168.49.2 for Minikube's docker driver), if found. */
export function apiServerHost(context: string, kubeconfig?: string): string | undefined {
  for (const file of kubeconfigPaths(kubeconfig)) {
    if (!existsSync(file)) continue;
    const doc = parse(readFileSync(file, 'utf8')) as KubeconfigFile | null;
    const clusterName = doc?.contexts?.find((entry) => entry.name === context)?.context?.cluster;
    const server = doc?.clusters?.find((entry) => entry.name === clusterName)?.cluster?.server;
    if (server) return new URL(server).hostname;
  }
  return undefined;
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host.startsWith('127.') || host === '[::1]' || host === '::1';

export interface DockerEndpoint {
  host: string;
  certPath?: string;
}

/**
 * Minikube's Docker daemon, so the image is built where the kubelet finds it
 * (no registry, no push). In order: stack config; the environment, but only
 * when `eval $(minikube docker-env)` set it (MINIKUBE_ACTIVE_DOCKERD), so a
 * desktop DOCKER_HOST is never mistaken for Minikube's; `minikube docker-env` itself.
 */
export function minikubeDockerEndpoint(
  configured: { host?: string; certPath?: string },
  profile: string,
  env: NodeJS.ProcessEnv = process.env,
  run: (args: string[]) => string = (args) => execFileSync('minikube', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
): DockerEndpoint {
  if (configured.host) return { host: configured.host, certPath: configured.certPath };
  if (env.MINIKUBE_ACTIVE_DOCKERD && env.DOCKER_HOST) {
    return { host: env.DOCKER_HOST, certPath: env.DOCKER_CERT_PATH };
  }
  let output: string;
  try {
    output = run(['-p', profile, 'docker-env', '--shell', 'none']);
  } catch (error) {
    throw new Error(
      `cannot find Minikube's Docker daemon (\`minikube -p ${profile} docker-env\` failed: ${(error as Error).message.split('\n')[0]}). ` +
        'Start Minikube with the docker container runtime, or run `eval $(minikube docker-env)`, ' +
        'or set `pulumi config set dockerHost ...`, or use imageMode registry or prebuilt.',
    );
  }
  const vars = Object.fromEntries(
    output
      .split('\n')
      .map((line) => /^(?:export )?([A-Z_]+)="?([^"]*)"?$/.exec(line.trim()))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => [match[1], match[2]]),
  );
  if (!vars.DOCKER_HOST) throw new Error(`\`minikube docker-env\` printed no DOCKER_HOST:\n${output}`);
  return { host: vars.DOCKER_HOST, certPath: vars.DOCKER_CERT_PATH };
}
