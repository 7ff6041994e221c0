import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadConfig } from '../../components/config';
import { createStack, type StackOutputs } from '../../components/stack';
import { DEV_SECRETS, run, setConfig, valueOf, type Run } from './harness';

export const ROOT = path.resolve(__dirname, '..', '..');

/**
 * A file as committed (HEAD), so that a developer's own stack settings in the
 * working copy (say, encrypted secrets after `npm run up`) change nothing here.
 */
export function committedFile(name: string): string {
  try {
    return execFileSync('git', ['show', `HEAD:${name}`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return readFileSync(path.join(ROOT, name), 'utf8'); // not a git checkout (an unpacked archive)
  }
}

/** The dev stack's own config file, as `pulumi up -s dev` reads it (without the secrets). */
export function devStackConfig(): Record<string, string> {
  const file = parse(committedFile('Pulumi.dev.yaml')) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(file.config).map(([key, value]) => [key.replace(/^koa-mongodb:/, ''), String(value)]));
}

/** Machine-specific settings a test cannot discover (no minikube here). */
export const MACHINE = { minikubeIp: '192.168.49.2' };

export interface ResolvedOutputs {
  url: string;
  namespace: string;
  image: string;
  mongoHost: string;
  portForward: string;
  kubeContext: string;
}

/** Runs the whole program under the dev stack's config plus `overrides`, with outputs resolved. */
export async function runStack(overrides: Record<string, string | undefined> = {}, secrets: Record<string, string> = DEV_SECRETS): Promise<Run<StackOutputs> & { resolved: ResolvedOutputs }> {
  const values: Record<string, string> = { ...devStackConfig(), ...MACHINE, ...secrets };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete values[key];
    else values[key] = value;
  }
  setConfig(values, Object.keys(secrets));
  const result = await run(() => createStack(loadConfig()));
  const o = result.outputs;
  const resolved: ResolvedOutputs = {
    url: await valueOf(o.url),
    namespace: await valueOf(o.namespace),
    image: await valueOf(o.image),
    mongoHost: await valueOf(o.mongoHost),
    portForward: await valueOf(o.portForward),
    kubeContext: o.kubeContext,
  };
  return { ...result, resolved };
}
