/**
 * All stack configuration, read and checked in one place.
 *
 * Defaults live once, in Pulumi.yaml's `config:` schema: the CLI applies them before the program
 * runs (and the unit tests' harness applies them the same way), so every declared key has a value here.
 * This module knows nothing of the components; stack.ts maps this shape onto their Args.
 */
import * as pulumi from '@pulumi/pulumi';
import { ConfigError, parseConfig, type LogLevel } from '../service/src/config';
import { BACKUP_USER_PREFIX } from './mongodb';

/** How the service's image is had (components/serviceImage.ts); defined here once, with the type the components take. */
export const IMAGE_MODES = ['minikube', 'registry', 'prebuilt'] as const;
export type ImageMode = (typeof IMAGE_MODES)[number];
/** The kind of the public Service (components/dataService.ts). */
export const SERVICE_TYPES = ['NodePort', 'LoadBalancer', 'ClusterIP'] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];
/** The service's log levels are the service's own (service/src/config.ts): the stack checks against its list. */
export type { LogLevel };

export interface Resources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

export interface StackConfig {
  project: string;
  stack: string;
  kube: {
    /** The kubeconfig context every Kubernetes resource goes to; never kubectl's current one. */
    context: string;
    /** Path of a kubeconfig file; unset means KUBECONFIG or ~/.kube/config. */
    kubeconfig?: string;
    namespace: string;
    /** False for namespaces that exist anyway (default, kube-system…): never created, never deleted. */
    createNamespace: boolean;
  };
  minikube: {
    profile: string;
    /** Node IP for the URL output; unset means: taken from the kube context's API server address. */
    ip?: string;
  };
  image: {
    mode: ImageMode;
    /** Repository the built image is tagged into (minikube, registry modes). */
    repository: string;
    /** Full reference of an image built elsewhere (prebuilt mode). */
    reference?: string;
    registry?: { server: string; username: string; password: pulumi.Output<string> };
    /** registry mode: build platform (minikube mode builds on the node, for the node). */
    platform?: string;
    /** prebuilt mode: the admin image (admin/Dockerfile: the users Jobs, the backups) built elsewhere; required there. */
    adminReference?: string;
  };
  mongo: {
    image: string;
    database: string;
    collection: string;
    rootUsername: string;
    rootPassword: pulumi.Output<string>;
    /** The application user is this, a dash and a tag of its password (see components/mongodb.ts). */
    appUserPrefix: string;
    appPassword: pulumi.Output<string>;
    storageSize: string;
    storageClass: string;
    staticVolume: boolean;
    hostPath: string;
    wiredTigerCacheGb: number;
    resources: Resources;
  };
  service: {
    replicas: number;
    minReplicas: number;
    maxReplicas: number;
    targetCpuPercent: number;
    resources: Resources;
    serviceType: ServiceType;
    port: number;
    nodePort?: number;
    logLevel: LogLevel;
    corsOrigins: string;
    /** Longest `pulumi up` waits for a rollout before it fails with what the pods say. */
    rolloutTimeoutSeconds: number;
    /** The service's tuning variables (`serviceEnv`), each checked by the service's own parser. */
    tuning: Record<string, string>;
  };
  /** The scheduled backups (components/backups.ts). */
  backup: {
    /** A cron expression, or undefined for no CronJob (the key set to ""). */
    schedule?: string;
    keep: number;
    storageSize: string;
  };
  /** Keep the namespace, MongoDB's volume and the backups' on `pulumi destroy`, so a later `up` finds the data. */
  retainOnDelete: boolean;
  /** Do not wait for workloads to become ready (clusters without nodes, GitOps-style hand-offs). */
  skipAwait: boolean;
}

/** Every non-secret key the program reads; Pulumi.yaml declares each, with its default. */
export const CONFIG_KEYS = [
  'kubeContext', 'kubeconfig', 'namespace', 'minikubeProfile', 'minikubeIp',
  'imageMode', 'imageRepository', 'image', 'imagePlatform', 'registryServer', 'registryUsername',
  'mongoImage', 'mongoDatabase', 'mongoCollection', 'mongoRootUsername', 'mongoAppUsername',
  'mongoStorageSize', 'mongoStorageClass', 'mongoStaticVolume', 'mongoHostPath', 'mongoWiredTigerCacheGb',
  'mongoCpuRequest', 'mongoMemoryRequest', 'mongoCpuLimit', 'mongoMemoryLimit',
  'replicas', 'minReplicas', 'maxReplicas', 'targetCpuPercent', 'cpuRequest', 'memoryRequest', 'cpuLimit', 'memoryLimit',
  'serviceType', 'servicePort', 'nodePort', 'logLevel', 'corsOrigins', 'serviceEnv', 'rolloutTimeoutSeconds',
  'backupSchedule', 'backupKeep', 'backupStorageSize', 'adminImage', 'retainOnDelete', 'skipAwait',
] as const;
type Key = (typeof CONFIG_KEYS)[number];

/** Keys that must be set with `pulumi config set --secret` (registryPassword only in registry mode). */
export const SECRET_KEYS = ['mongoRootPassword', 'mongoAppPassword', 'registryPassword'] as const;
/**
 * Secret keys every stack needs: Pulumi.yaml declares them without a default, so the CLI asks for them.
 * (registryPassword is not declared there: a declared secret cannot be optional.)
 */
export const REQUIRED_SECRET_KEYS = ['mongoRootPassword', 'mongoAppPassword'] as const;

const BUILT_IN_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);
const CPU = /^(\d+m|\d+(\.\d+)?)$/;
const MEMORY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `value` as the service reads LOG_LEVEL, checked by the service's own parser (its one list of levels). */
function serviceLogLevel(value: string, problems: string[]): LogLevel {
  try {
    return parseConfig({ LOG_LEVEL: value }).logLevel;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const levelProblems = error.problems.filter((problem) => problem.startsWith('LOG_LEVEL '));
    // Any other problem is the service's parser wanting more than LOG_LEVEL: a bug here, not the user's value.
    if (levelProblems.length !== error.problems.length) throw error;
    problems.push(...levelProblems.map((problem) => `logLevel must be one of the levels the service takes: ${problem}`));
    return 'info';
  }
}

/**
 * The service's variables the stack sets from its other keys or from the cluster (components/dataService.ts),
 * and HOST, whose default (every interface) the probes and the Service rely on: `serviceEnv` cannot override them.
 */
export const STACK_SET_SERVICE_ENV = [
  'PORT', 'HOST', 'METRICS_PORT', 'METRICS_PATH', 'MONGODB_URI', 'MONGODB_DB', 'MONGODB_COLLECTION', 'MONGODB_AUTH_SOURCE',
  'MONGODB_USER', 'MONGODB_USERNAME', 'MONGODB_PASSWORD', 'MONGODB_PASS', 'LOG_LEVEL', 'CORS_ORIGINS',
  'SHUTDOWN_TIMEOUT_MS', 'MEMORY_LIMIT_BYTES',
] as const;

/** Every variable the service's parser reads, found by letting it read an empty environment. */
function serviceVariables(): Set<string> {
  const names = new Set<string>();
  parseConfig(new Proxy({}, { get: (_, name) => (typeof name === 'string' && names.add(name), undefined) }));
  return names;
}

/**
 * `serviceEnv`: `NAME=value` pairs, separated by spaces or commas, for the service's tuning variables
 * (docs/service.md). Only names the service reads and the stack does not set itself; the values checked by
 * the service's own parser, so a bad one stops the preview instead of a crash-looping rollout.
 */
function serviceTuning(raw: string, problems: string[]): Record<string, string> {
  const tuning: Record<string, string> = {};
  const known = serviceVariables();
  for (const pair of raw.split(/[\s,]+/).filter(Boolean)) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!match) problems.push(`serviceEnv entry "${pair}" must be NAME=value`);
    else if ((STACK_SET_SERVICE_ENV as readonly string[]).includes(match[1])) problems.push(`serviceEnv cannot set ${match[1]}: the stack sets it (see docs/configuration.md)`);
    else if (!known.has(match[1])) problems.push(`serviceEnv: the service reads no variable ${match[1]} (docs/service.md lists them)`);
    else tuning[match[1]] = match[2];
  }
  try {
    parseConfig(tuning);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems.map((problem) => `serviceEnv: ${problem}`));
  }
  return tuning;
}

/** Each field of a standard five-field cron expression: its range, and the names it takes. */
const CRON_FIELDS: Array<{ name: string; min: number; max: number; names?: string[] }> = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];
/** The macros Kubernetes' CronJob takes (robfig/cron's descriptors) instead of five fields. */
const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];

/**
 * Why `expression` is not a schedule Kubernetes' CronJob accepts (five fields: numbers, `*`, `?` in the
 * day fields, ranges, lists, steps, month and weekday names; or a macro), or undefined. Checked here so a
 * typo fails before anything changes, naming the field, rather than as the API server's rejection mid-update.
 */
export function cronProblem(expression: string): string | undefined {
  if (CRON_MACROS.includes(expression)) return undefined;
  if (/^TZ=|^CRON_TZ=/.test(expression)) return 'TZ= is not allowed in a CronJob\'s schedule (it runs in UTC)';
  const fields = expression.split(/\s+/);
  if (fields.length !== 5) return `has ${fields.length} field${fields.length === 1 ? '' : 's'}; a cron expression has 5 (minute hour day-of-month month day-of-week) or is one of ${CRON_MACROS.join(', ')}`;
  for (const [index, field] of fields.entries()) {
    const spec = CRON_FIELDS[index];
    const value = (text: string) => {
      const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
      if (named >= 0) return named + spec.min;
      return /^\d+$/.test(text) ? Number(text) : NaN;
    };
    for (const part of field.split(',')) {
      const match = /^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(part);
      const bad = `its ${spec.name} field "${field}" is not a number from ${spec.min} to ${spec.max}, *, a range, a list or a step`;
      if (!match) return bad;
      if (match[1] === '?' && index !== 2 && index !== 4) return bad;
      if (match[2] !== undefined && Number(match[2]) < 1) return bad;
      if (match[1] === '*' || match[1] === '?') continue;
      const [low, high = low] = match[1].split('-').map(value);
      if (![low, high].every((n) => Number.isInteger(n) && n >= spec.min && n <= spec.max) || low > high) return bad;
    }
  }
  return undefined;
}

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'StackConfigError';
  }
}

/** Reads the stack's config; throws StackConfigError listing every problem at once. */
export function loadConfig(): StackConfig {
  const config = new pulumi.Config();
  const problems: string[] = [];

  const str = (key: Key): string => {
    const value = config.get(key);
    if (value === undefined) {
      problems.push(`${key} has no value: Pulumi.yaml declares its default, which the Pulumi CLI applies (run the program with \`pulumi up\`)`);
      return '';
    }
    return value;
  };
  // Optional keys default to "" in Pulumi.yaml (a declared key without a default is required there).
  const optional = (key: Key): string | undefined => {
    const value = config.get(key)?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const oneOf = <T extends string>(key: Key, allowed: readonly T[]): T => {
    const value = str(key) as T;
    if (!allowed.includes(value)) problems.push(`${key} must be one of ${allowed.join(', ')}; got "${value}"`);
    return value;
  };
  const num = (key: Key, min: number, max: number, integer = true): number => {
    const raw = str(key);
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problems.push(`${key} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}; got "${raw}"`);
    }
    return value;
  };
  const bool = (key: Key): boolean => {
    const raw = str(key);
    if (raw !== 'true' && raw !== 'false') problems.push(`${key} must be true or false; got "${raw}"`);
    return raw === 'true';
  };
  const quantity = (key: Key, pattern: RegExp): string => {
    const value = str(key);
    if (!pattern.test(value)) problems.push(`${key} "${value}" is not a Kubernetes ${pattern === CPU ? 'CPU' : 'memory'} quantity`);
    return value;
  };
  const secret = (key: (typeof SECRET_KEYS)[number], needed: boolean): pulumi.Output<string> => {
    const value = config.getSecret(key);
    if (value === undefined || config.get(key) === '') {
      if (needed) problems.push(`${key} is not set: run \`pulumi config set --secret ${key} <value>\``);
      return pulumi.secret('');
    }
    return value;
  };
  const resources = (prefix: '' | 'mongo'): Resources => {
    const key = (name: string) => (prefix ? `${prefix}${name[0].toUpperCase()}${name.slice(1)}` : name) as Key;
    return {
      requests: { cpu: quantity(key('cpuRequest'), CPU), memory: quantity(key('memoryRequest'), MEMORY) },
      limits: { cpu: quantity(key('cpuLimit'), CPU), memory: quantity(key('memoryLimit'), MEMORY) },
    };
  };

  const namespace = str('namespace');
  if (!DNS_LABEL.test(namespace)) problems.push(`namespace "${namespace}" is not a valid Kubernetes name (lower-case DNS label)`);

  const mode = oneOf('imageMode', IMAGE_MODES);
  const repository = str('imageRepository');
  const reference = optional('image');
  if (mode === 'prebuilt') {
    if (reference === undefined) problems.push('imageMode prebuilt needs `image`, the full image reference to deploy');
    else if (!/(@sha256:[0-9a-f]{64}|:[\w][\w.-]{0,127})$/.test(reference) || /:latest$/.test(reference)) {
      problems.push(`image "${reference}" must name an exact tag or digest (not :latest), so that a change rolls out`);
    }
  }
  if (!/^[a-z0-9]+([._/-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(repository) || repository.includes(':latest')) {
    problems.push(`imageRepository "${repository}" must be an image name without a tag`);
  }
  let registry: StackConfig['image']['registry'];
  if (mode === 'registry') {
    const server = optional('registryServer');
    const username = optional('registryUsername');
    if (server === undefined) problems.push('imageMode registry needs registryServer (e.g. docker.io or ghcr.io)');
    if (username === undefined) problems.push('imageMode registry needs registryUsername');
    registry = { server: server ?? '', username: username ?? '', password: secret('registryPassword', true) };
  }

  const mongoImage = str('mongoImage');
  if (!/^[\w./-]+(:\d[\w.-]*|@sha256:[0-9a-f]{64})$/.test(mongoImage)) {
    problems.push(`mongoImage "${mongoImage}" must be pinned to a version tag (e.g. mongo:8.0.12) or a digest`);
  }
  const mongoName = (key: 'mongoDatabase' | 'mongoCollection') => {
    const value = str(key);
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(value)) problems.push(`${key} "${value}" must be letters, digits, _ or - (at most 63)`);
    return value;
  };
  const username = (key: 'mongoRootUsername' | 'mongoAppUsername') => {
    const value = str(key);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) problems.push(`${key} "${value}" must be letters, digits, _, . or -`);
    // The backup user's names are `backup-<tag>`: the same prefix would let one user's retirement drop the other's.
    if (key === 'mongoAppUsername' && value === BACKUP_USER_PREFIX) problems.push(`${key} "${value}" is the backup user's prefix; choose another`);
    return value;
  };

  const serviceType = oneOf('serviceType', SERVICE_TYPES);
  const nodePortRaw = optional('nodePort');
  // 0 (the default) lets Kubernetes pick the node port.
  const nodePort = nodePortRaw === undefined || nodePortRaw === '0' ? undefined : Number(nodePortRaw);
  if (nodePort !== undefined && (!Number.isInteger(nodePort) || nodePort < 30000 || nodePort > 32767)) {
    problems.push(`nodePort must be a whole number from 30000 to 32767; got "${nodePortRaw}"`);
  }
  if (nodePort !== undefined && serviceType === 'ClusterIP') problems.push('nodePort needs serviceType NodePort or LoadBalancer');

  const minReplicas = num('minReplicas', 1, 100);
  const maxReplicas = num('maxReplicas', 1, 100);
  if (minReplicas > maxReplicas) problems.push(`minReplicas (${minReplicas}) must not exceed maxReplicas (${maxReplicas})`);

  const logLevel = serviceLogLevel(str('logLevel'), problems);

  const backupSchedule = optional('backupSchedule');
  if (backupSchedule !== undefined) {
    const problem = cronProblem(backupSchedule);
    if (problem) problems.push(`backupSchedule "${backupSchedule}" ${problem}; or "" for no scheduled backup`);
  }
  const adminReference = optional('adminImage');
  if (adminReference === undefined) {
    if (mode === 'prebuilt') {
      problems.push('imageMode prebuilt needs `adminImage` too: the admin image built from admin/Dockerfile (it runs the users Jobs and the backups), e.g. `docker build -t <registry>/data-admin:<tag> admin && docker push <registry>/data-admin:<tag>`');
    }
  } else {
    if (mode !== 'prebuilt') problems.push('adminImage is for imageMode prebuilt only (the other modes build admin/ themselves)');
    else if (!/(@sha256:[0-9a-f]{64}|:[\w][\w.-]{0,127})$/.test(adminReference) || /:latest$/.test(adminReference)) {
      problems.push(`adminImage "${adminReference}" must name an exact tag or digest (not :latest)`);
    }
  }

  const minikubeIp = optional('minikubeIp');
  if (minikubeIp !== undefined && !/^[\w.-]+$|^\[[0-9a-f:]+\]$/i.test(minikubeIp)) problems.push(`minikubeIp "${minikubeIp}" is not a host name or IP`);

  const result: StackConfig = {
    project: pulumi.getProject(),
    stack: pulumi.getStack(),
    kube: {
      context: str('kubeContext'),
      kubeconfig: optional('kubeconfig'),
      namespace,
      createNamespace: !BUILT_IN_NAMESPACES.has(namespace),
    },
    minikube: { profile: str('minikubeProfile'), ip: minikubeIp },
    image: {
      mode,
      repository,
      reference,
      registry,
      platform: optional('imagePlatform'),
      adminReference,
    },
    mongo: {
      image: mongoImage,
      database: mongoName('mongoDatabase'),
      collection: mongoName('mongoCollection'),
      rootUsername: username('mongoRootUsername'),
      rootPassword: secret('mongoRootPassword', true),
      appUserPrefix: username('mongoAppUsername'),
      appPassword: secret('mongoAppPassword', true),
      storageSize: quantity('mongoStorageSize', MEMORY),
      storageClass: str('mongoStorageClass'),
      staticVolume: bool('mongoStaticVolume'),
      hostPath: str('mongoHostPath'),
      wiredTigerCacheGb: num('mongoWiredTigerCacheGb', 0.25, 1024, false),
      resources: resources('mongo'),
    },
    service: {
      replicas: num('replicas', 1, 100),
      minReplicas,
      maxReplicas,
      targetCpuPercent: num('targetCpuPercent', 1, 100),
      resources: resources(''),
      serviceType,
      nodePort,
      port: num('servicePort', 1, 65535),
      logLevel,
      corsOrigins: str('corsOrigins'),
      tuning: serviceTuning(str('serviceEnv'), problems),
      rolloutTimeoutSeconds: num('rolloutTimeoutSeconds', 30, 3600),
    },
    backup: {
      schedule: backupSchedule,
      keep: num('backupKeep', 1, 1000),
      storageSize: quantity('backupStorageSize', MEMORY),
    },
    retainOnDelete: bool('retainOnDelete'),
    skipAwait: bool('skipAwait'),
  };

  if (problems.length > 0) throw new StackConfigError(problems);
  return result;
}
