import { execFileSync } from 'node:child_process';

/** The service URL: --url, else SERVICE_URL, else `pulumi stack output url` of the selected stack. */
export function resolveServiceUrl(flag: string | undefined): string {
  const url = flag ?? process.env.SERVICE_URL;
  if (url) return url.replace(/\/$/, '');
  try {
    return execFileSync('pulumi', ['stack', 'output', 'url'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().replace(/\/$/, '');
  } catch {
    throw new Error('no service URL: pass --url http://HOST:PORT (or set SERVICE_URL, or run from a Pulumi stack with a `url` output)');
  }
}
