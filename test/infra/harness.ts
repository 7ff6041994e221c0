/**
 * Runs the Pulumi program under Pulumi's mocks (no CLI, no cluster) and records
 * every resource it declares, with its inputs, provider and parent, so tests
 * can assert what `pulumi up` would send.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';

export const PROJECT = 'koa-mongodb';
export const STACK = 'test';

export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Provider reference (`urn::id`) the engine would use for this resource. */
  provider?: string;
  custom: boolean;
}

const declared: Declared[] = [];
/** Existing objects the program reads (`Resource.get`), by `type::id`: not declared, never changed. */
const reads: Array<{ type: string; id: string; provider?: string }> = [];
const parents = new Map<string, string | undefined>();
const options = new Map<string, pulumi.ResourceOptions>();

/** What a real API server / docker provider would fill in, so outputs resolve like in `pulumi up`. */
function simulatedState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const state: Record<string, any> = { ...args.inputs }; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (args.type.startsWith('kubernetes:') && state.metadata && state.metadata.name === undefined) {
    state.metadata = { ...state.metadata, name: `${args.name}-abc123` };
  }
  if (args.type.startsWith('kubernetes:') && state.metadata) {
    // The API server gives an object a new resourceVersion whenever its content changes.
    state.metadata = { ...state.metadata, resourceVersion: createHash('sha256').update(JSON.stringify(args.inputs)).digest('hex').slice(0, 8) };
  }
  if (args.type === 'kubernetes:core/v1:Service' && state.spec?.type && state.spec.type !== 'ClusterIP') {
    state.spec = { ...state.spec, ports: state.spec.ports.map((port: { nodePort?: number }) => ({ ...port, nodePort: port.nodePort ?? 31234 })) };
    if (state.spec.type === 'LoadBalancer') state.status = { loadBalancer: { ingress: [{ ip: '10.96.0.200' }] } };
  }
  if (args.type === 'kubernetes:core/v1:Namespace' && args.id) {
    // A read of an existing namespace: the API server's identity of it.
    state.metadata = { name: args.id, uid: createHash('sha256').update(`cluster/${args.id}`).digest('hex').slice(0, 32) };
  }
  if (args.type === 'docker:index/image:Image') {
    const digest = createHash('sha256').update(String(state.imageName)).digest('hex');
    state.repoDigest = `${String(state.imageName).split(':')[0]}@sha256:${digest}`;
  }
  return state;
}

pulumi.runtime.setMocks(
  {
    newResource(args) {
      if (args.id !== undefined && args.id !== '') {
        reads.push({ type: args.type, id: args.id, provider: args.provider });
        return { id: args.id, state: simulatedState(args) };
      }
      declared.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider, custom: args.custom ?? true });
      return { id: `${args.name}-id`, state: simulatedState(args) };
    },
    call(args) {
      return args.inputs;
    },
  },
  PROJECT,
  STACK,
  false,
);

/** The resolved value of an Output (secret or not). */
export function valueOf<T>(output: pulumi.Input<T>): Promise<pulumi.Unwrap<T>> {
  return new Promise((resolve) => pulumi.output(output).apply((value) => resolve(value)));
}

/**
 * The defaults Pulumi.yaml declares, as the CLI hands them to the program: every declared key with a
 * default, as a string (`false`, `2`, `""`). Defaults live there only; the harness applies them the same way.
 */
export function projectDefaults(): Record<string, string> {
  const project = parse(readFileSync(path.resolve(__dirname, '..', '..', 'Pulumi.yaml'), 'utf8')) as { config: Record<string, { default?: unknown }> };
  return Object.fromEntries(
    Object.entries(project.config)
      .filter(([, declaration]) => declaration.default !== undefined)
      .map(([key, declaration]) => [key, String(declaration.default)]),
  );
}

/**
 * Sets the stack's whole config as the CLI would: Pulumi.yaml's defaults, overridden by `values`
 * (plain keys, without the project prefix), marking `secrets` as secret.
 */
export function setConfig(values: Record<string, string>, secrets: string[] = []): void {
  const all = { ...projectDefaults(), ...values };
  const prefixed = Object.fromEntries(Object.entries(all).map(([key, value]) => [`${PROJECT}:${key}`, value]));
  pulumi.runtime.setAllConfig(prefixed, secrets.map((key) => `${PROJECT}:${key}`));
}

export const DEV_SECRETS = { mongoRootPassword: 'R00t-Pa55-never-in-plain', mongoAppPassword: 'App-Pa55-never-in-plain' };

export interface Run<T> {
  resources: Declared[];
  /** Existing objects read with `Resource.get`. */
  reads: Array<{ type: string; id: string; provider?: string }>;
  outputs: T;
}

/**
 * Runs `program` as the engine would (inside a root Stack resource), recording
 * every resource it declares and the parent each was created under.
 */
export async function run<T>(program: () => T): Promise<Run<T>> {
  declared.length = 0;
  reads.length = 0;
  parents.clear();
  options.clear();
  let outputs!: T;
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
      const parent = args.opts.parent as (pulumi.Resource & { __pulumiType?: string; __name?: string }) | undefined;
      parents.set(`${args.type}::${args.name}`, parent ? `${parent.__pulumiType}::${parent.__name}` : undefined);
      options.set(`${args.type}::${args.name}`, args.opts);
      return undefined;
    });
    outputs = program();
    return undefined;
  });
  // Registrations are asynchronous; wait until no new resource appears for a while.
  let last = -1;
  while (last !== declared.length) {
    last = declared.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { resources: [...declared], reads: [...reads], outputs };
}

/** `type::name` of the resource's parent, or undefined for top-level resources. */
export function parentOf(resource: Pick<Declared, 'type' | 'name'>): string | undefined {
  return parents.get(`${resource.type}::${resource.name}`);
}

/** The options (ignoreChanges, retainOnDelete, dependsOn…) the resource was created with. */
export function optionsOf(resource: Pick<Declared, 'type' | 'name'>): pulumi.ResourceOptions {
  return options.get(`${resource.type}::${resource.name}`) ?? {};
}

/** The key Pulumi marks a secret value with in serialized inputs. */
export const SECRET_SIG = '4dabf18193072939515e22adb298388d';

/** Inputs with the engine's secret wrappers removed: the object as the API server would get it. */
export function plain(value: unknown): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (SECRET_SIG in record) return plain(record.value);
    return Object.fromEntries(Object.entries(record).map(([key, child]) => [key, plain(child)]));
  }
  return value;
}

/** Kubernetes objects as manifests: what `kubectl get -o yaml` would show of the spec. */
export function manifests(resources: Declared[]): Array<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return k8sResources(resources).map((resource) => plain(resource.inputs));
}

export const k8sResources = (resources: Declared[]) => resources.filter((r) => r.type.startsWith('kubernetes:'));
export const ofType = (resources: Declared[], type: string) => resources.filter((r) => r.type === type);
export function one(resources: Declared[], type: string, name?: string): Declared {
  const found = resources.filter((r) => r.type === type && (name === undefined || r.name === name));
  if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${name}` : ''}, found ${found.length}`);
  return found[0];
}

/** True when every label of a selector is on `labels`. */
export function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}
