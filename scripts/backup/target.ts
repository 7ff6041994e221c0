/**
 * Where backup and restore read and write: the server at MONGODB_URI, or else the stack's MongoDB through
 * the cluster (`kubectl port-forward` to its Service, the application user's credentials read from its
 * Secret with kubectl; the user finds no port and no password, and none is printed).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { checkDatabaseName } from '../../admin/src/backup/names';

/** Fixed names of the stack's MongoDB objects (components/mongodb.ts, component name "mongodb"; a test checks them). */
export const MONGO_SERVICE = 'mongodb';
export const MONGO_SECRET = 'mongodb-credentials';
export const SECRET_USERNAME_KEY = 'app-username';
export const SECRET_PASSWORD_KEY = 'app-password';
export const MONGO_PORT = 27017;

/** Bad arguments or environment: exit code 2. */
export class UsageError extends Error {}

export type Target =
  | { kind: 'direct'; uri: string; database: string }
  | { kind: 'cluster'; stack: string; context: string; namespace: string; kubeconfig?: string; database: string };

export interface TargetFlags {
  db?: string;
  stack?: string;
  context?: string;
  namespace?: string;
}

/** Reads a plain config value of a stack (its Pulumi.<stack>.yaml, else Pulumi.yaml's default). */
export type StackValue = (stack: string, key: string) => string;

/** The stack file reader that `npm run up` uses (scripts/lib/stack-file.js), run from the project's root. */
export function stackFileValue(root: string): StackValue {
  return (stack, key) =>
    execFileSync(process.execPath, [path.join(root, 'scripts', 'lib', 'stack-file.js'), stack, 'value', key], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * MONGODB_URI set: that server, database --db, else MONGODB_DB, else flask_db.
 * Otherwise the stack's (--stack, else PULUMI_STACK, else dev): its kubeContext, namespace, kubeconfig and
 * mongoDatabase settings, each overridable by a flag.
 */
export function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv, stackValue: StackValue): Target {
  const uri = env.MONGODB_URI?.trim();
  if (uri) {
    if (flags.context || flags.namespace || flags.stack) throw new UsageError('--stack, --context and --namespace choose the cluster; unset MONGODB_URI to use them');
    if (!/^mongodb(\+srv)?:\/\//.test(uri)) throw new UsageError('MONGODB_URI must start with mongodb:// or mongodb+srv://');
    const database = flags.db ?? (env.MONGODB_DB?.trim() || 'flask_db');
    const bad = checkDatabaseName(database);
    if (bad) throw new UsageError(bad);
    return { kind: 'direct', uri, database };
  }
  const stack = flags.stack ?? (env.PULUMI_STACK?.trim() || 'dev');
  const value = (key: string) => {
    try {
      return stackValue(stack, key);
    } catch (error) {
      throw new UsageError(`cannot read the settings of stack ${stack} (${String((error as Error).message).split('\n')[0]}); set MONGODB_URI to reach a database directly`);
    }
  };
  const context = flags.context ?? value('kubeContext');
  const namespace = flags.namespace ?? value('namespace');
  const database = flags.db ?? (env.MONGODB_DB?.trim() || value('mongoDatabase') || 'flask_db');
  const kubeconfig = value('kubeconfig') || undefined;
  if (!context) throw new UsageError(`stack ${stack} has no kubeContext; pass --context`);
  if (!namespace) throw new UsageError(`stack ${stack} has no namespace; pass --namespace`);
  const bad = checkDatabaseName(database);
  if (bad) throw new UsageError(bad);
  return { kind: 'cluster', stack, context, namespace, kubeconfig, database };
}

/** A URI fit to print: without its user and password. */
export function redactUri(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1');
}

/** The kubectl arguments for the target's cluster and namespace. */
export function kubectlArgs(target: Extract<Target, { kind: 'cluster' }>, ...args: string[]): string[] {
  return [...(target.kubeconfig ? ['--kubeconfig', target.kubeconfig] : []), '--context', target.context, '-n', target.namespace, ...args];
}

export interface Connection {
  db: Db;
  /** Where, in words, for the summary (no credentials). */
  describe: string;
  close(): Promise<void>;
}

async function openClient(uri: string, database: string, extra: ConstructorParameters<typeof MongoClient>[1] = {}): Promise<{ client: MongoClient; db: Db }> {
  // A server that is not there fails within 5 s, unless the URI says otherwise.
  const timeouts = Object.fromEntries(
    ['serverSelectionTimeoutMS', 'connectTimeoutMS'].filter((option) => !new RegExp(`[?&]${option}=`, 'i').test(uri)).map((option) => [option, 5000]),
  );
  const client = new MongoClient(uri, { appName: 'koa-mongodb-backup', ...timeouts, ...extra });
  try {
    await client.connect();
    const db = client.db(database);
    await db.command({ ping: 1 });
    return { client, db };
  } catch (error) {
    await client.close().catch(() => undefined);
    throw error;
  }
}

function kubectl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('kubectl', args, { encoding: 'utf8', maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') reject(new Error('kubectl is not on PATH; install it, or set MONGODB_URI to reach a database directly'));
      else if (error) reject(new Error(String(stderr).trim().split('\n')[0] || error.message));
      else resolve(stdout);
    }),
  );
}

/** The application user's name and password from the stack's Secret (never printed). */
export async function readCredentials(target: Extract<Target, { kind: 'cluster' }>): Promise<{ username: string; password: string }> {
  let secret: { data?: Record<string, string> };
  try {
    secret = JSON.parse(await kubectl(kubectlArgs(target, 'get', 'secret', MONGO_SECRET, '-o', 'json'))) as typeof secret;
  } catch (error) {
    throw new Error(`cannot read Secret ${MONGO_SECRET} in namespace ${target.namespace} (context ${target.context}): ${(error as Error).message}. Is the stack up (npm run up)?`);
  }
  const field = (key: string) => Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
  const username = field(SECRET_USERNAME_KEY);
  const password = field(SECRET_PASSWORD_KEY);
  if (!username || !password) throw new Error(`Secret ${MONGO_SECRET} in namespace ${target.namespace} has no ${SECRET_USERNAME_KEY}/${SECRET_PASSWORD_KEY}`);
  return { username, password };
}

/** `kubectl port-forward svc/mongodb :27017`, resolved with the local port once it listens. */
export function portForward(target: Extract<Target, { kind: 'cluster' }>, timeoutMs = 30_000): Promise<{ port: number; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', kubectlArgs(target, 'port-forward', `svc/${MONGO_SERVICE}`, `:${MONGO_PORT}`, '--address', '127.0.0.1'), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const fail = (message: string) => {
      clearTimeout(timer);
      child.kill();
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail(`kubectl port-forward to svc/${MONGO_SERVICE} did not start within ${timeoutMs / 1000} s`), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve({ port: Number(match[1]), child });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', (error: NodeJS.ErrnoException) =>
      fail(error.code === 'ENOENT' ? 'kubectl is not on PATH; install it, or set MONGODB_URI to reach a database directly' : error.message),
    );
    child.once('exit', (code) => fail(`kubectl port-forward to svc/${MONGO_SERVICE} in ${target.namespace} (context ${target.context}) exited (${code}): ${output.trim().split('\n').pop() ?? ''}`));
  });
}

/** Connects to the target: directly, or through a port-forward that close() ends. */
export async function connect(target: Target): Promise<Connection> {
  if (target.kind === 'direct') {
    const { client, db } = await openClient(target.uri, target.database);
    return { db, describe: `database ${target.database} at ${redactUri(target.uri)}`, close: () => client.close() };
  }
  const credentials = await readCredentials(target);
  const forward = await portForward(target);
  forward.child.removeAllListeners('exit');
  try {
    const { client, db } = await openClient(`mongodb://127.0.0.1:${forward.port}/?directConnection=true`, target.database, {
      auth: credentials,
      authSource: target.database,
    });
    return {
      db,
      describe: `database ${target.database} of stack ${target.stack} (svc/${MONGO_SERVICE} in ${target.namespace}, context ${target.context}, through kubectl port-forward)`,
      close: async () => {
        await client.close();
        forward.child.kill();
      },
    };
  } catch (error) {
    forward.child.kill();
    throw error;
  }
}
