/**
 * How the end-to-end test reaches the deployed service from this machine.
 *
 * The stack's `url` output is the node's address when the host can reach it
 * (Linux drivers). Where it cannot (the docker driver on macOS and Windows,
 * whose API server is forwarded to 127.0.0.1), `url` is a loopback address that
 * only answers while the `portForward` output's command runs; the test then
 * runs that command itself, on a free local port, and stops it afterwards.
 *
 * `kubectl port-forward svc/...` picks ONE pod and follows it until it goes, so
 * it cannot show that a rollout drops no request through the Service. For that
 * check the test goes through the API server's service proxy (`kubectl proxy`),
 * which sends each request to one of the Service's ready endpoints, as kube-proxy does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';

export type Reach =
  | { kind: 'direct'; url: string }
  | { kind: 'port-forward'; kubectlArgs: (localPort: number) => string[]; service: string; remotePort: number };

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|::1)$/i;

/** Direct for a reachable address; for a loopback one, the `portForward` output's kubectl arguments with our own local port. */
export function planReach(url: string, portForwardCommand: string): Reach {
  const { hostname } = new URL(url);
  if (!LOOPBACK.test(hostname)) return { kind: 'direct', url };
  const words = portForwardCommand.trim().split(/\s+/);
  const ports = words.at(-1) ?? '';
  const match = /^(\d+):(\d+)$/.exec(ports);
  const service = /^(?:svc|service|services)\/(.+)$/.exec(words.at(-2) ?? '')?.[1];
  if (words[0] !== 'kubectl' || !words.includes('port-forward') || !match || !service) {
    throw new Error(`the url ${url} needs a port-forward, but the portForward output is not a kubectl port-forward command: ${portForwardCommand}`);
  }
  const remotePort = Number(match[2]);
  return { kind: 'port-forward', service, remotePort, kubectlArgs: (localPort) => [...words.slice(1, -1), `${localPort}:${remotePort}`] };
}

/** A local TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Background {
  /** Base URL to send requests to. */
  url: string;
  stop: () => Promise<void>;
}

/**
 * Runs `command args` until it prints a line matching `ready` (the base URL is
 * made from that match). If it exits later, before `stop()` (the pod a
 * port-forward followed went away), it is started again, for up to 2 minutes.
 */
async function background(command: string, args: string[], ready: RegExp, toUrl: (match: RegExpExecArray) => string, log: (line: string) => void): Promise<Background> {
  let child: ChildProcess | undefined;
  let stopped = false;
  const start = () =>
    new Promise<string>((resolve, reject) => {
      const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let output = '';
      let up = false;
      const timer = setTimeout(() => reject(new Error(`\`${command} ${args.join(' ')}\` was not ready within 30 s:\n${output}`)), 30_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = ready.exec(output);
        if (match && !up) {
          up = true;
          clearTimeout(timer);
          resolve(toUrl(match));
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${command}: ${error.message}`));
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        if (!up) return reject(new Error(`\`${command} ${args.join(' ')}\` exited with ${code}:\n${output}`));
        if (!stopped) void restart(code);
      });
    });
  const restart = async (code: number | null) => {
    log(`${command} ${args.join(' ')} exited (${code}); starting it again`);
    const deadline = Date.now() + 120_000;
    while (!stopped && Date.now() < deadline) {
      try {
        await start();
        return;
      } catch (error) {
        log((error as Error).message.split('\n')[0]);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const url = await start();
  return {
    url,
    stop: async () => {
      stopped = true;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** `kubectl port-forward` as the plan says, on a free local port. */
export async function startPortForward(plan: Extract<Reach, { kind: 'port-forward' }>, log: (line: string) => void, kubectl = 'kubectl'): Promise<Background> {
  const port = await freePort();
  return background(kubectl, plan.kubectlArgs(port), /Forwarding from 127\.0\.0\.1:(\d+)/, (m) => `http://127.0.0.1:${m[1]}`, log);
}

/** The API server's proxy to a Service (each request to one of its ready endpoints), through `kubectl proxy`. */
export async function startServiceProxy(
  target: { context: string; namespace: string; service: string; port: number },
  log: (line: string) => void,
  kubectl = 'kubectl',
): Promise<Background> {
  const base = `/api/v1/namespaces/${target.namespace}/services/${target.service}:${target.port}/proxy`;
  return background(kubectl, ['--context', target.context, 'proxy', '--port=0'], /Starting to serve on 127\.0\.0\.1:(\d+)/, (m) => `http://127.0.0.1:${m[1]}${base}`, log);
}
