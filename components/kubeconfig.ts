/**
 * What the program learns from the kubeconfig: where the node of a kube context is, for the url output.
 * (The image is built through the minikube CLI itself: see minikubeImage.ts.)
 */
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
