/**
 * A user's checkout on a machine with minikube: a real copy of what `npm run up` runs (the program,
 * service/, admin/, scripts/, the stack files; node_modules linked), a fresh HOME and PULUMI_HOME (so `pulumi
 * whoami` says "not logged in" and the script keeps the state in <project>/.pulumi), the real Pulumi CLI
 * and the minikube STAND-IN first on PATH, and the passphrase in the environment.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureMongoStandIn } from '../../devkit/images';
import { startMinikubeStandIn, type MinikubeStandIn } from '../../devkit/minikube-standin';
import { REPO_ROOT } from '../../devkit/paths';
import { ensurePulumiEngine } from '../../devkit/pulumi-engine';
import { scratchDir } from '../../devkit/scratch';

/** MongoDB's STAND-IN as the stand-in node holds it: a version-like tag, as the stack's config demands. */
export const MONGO_IMAGE = 'local/mongo-standin:1.24.2-ferretdb';

/**
 * A user's machine: the minikube stand-in (no profile yet) and a checkout whose stack names MongoDB's
 * stand-in, the one setting a user here needs that a user with Docker Hub does not (the official image
 * cannot be pulled here).
 */
export async function userWithMinikube(log: (line: string) => void): Promise<{ mk: MinikubeStandIn; user: UserProject }> {
  const engine = ensurePulumiEngine(log);
  const mongo = await ensureMongoStandIn({ log });
  const mk = await startMinikubeStandIn({ log, registryImages: [{ archive: mongo.archive, as: MONGO_IMAGE }] });
  const user = new UserProject(engine, mk.env, randomBytes(12).toString('hex'));
  writeFileSync(path.join(user.dir, 'Pulumi.dev.yaml'), `config:\n  koa-mongodb:mongoImage: ${MONGO_IMAGE}\n`);
  return { mk, user };
}

export interface CommandRun {
  code: number;
  output: string;
  seconds: number;
}

export class UserProject {
  readonly dir = scratchDir('koa-user-project-');
  readonly env: NodeJS.ProcessEnv;

  constructor(engineBin: string, minikubeEnv: Record<string, string>, passphrase: string) {
    for (const entry of ['Pulumi.yaml', 'Pulumi.dev.yaml', 'index.ts', 'components', 'scripts', 'package.json', 'tsconfig.json']) {
      cpSync(path.join(REPO_ROOT, entry), path.join(this.dir, entry), { recursive: true });
    }
    // service/ and admin/ as their build contexts hold them (their own node_modules and dist are not part of them).
    for (const context of ['service', 'admin']) {
      cpSync(path.join(REPO_ROOT, context), path.join(this.dir, context), {
        recursive: true,
        filter: (source) => !/[\\/](node_modules|dist)$/.test(source),
      });
    }
    // A line no earlier run had: the builder's layer cache outlives a run (it is kept on this machine),
    // and an edit a previous run already built would be a cache hit, not the build a user waits for.
    appendFileSync(path.join(this.dir, 'service/src/main.ts'), `// this copy: ${randomBytes(8).toString('hex')}\n`);
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(this.dir, 'node_modules'));
    // The user's own backend and kubeconfig stay out: `npm run up` picks the backend, the stand-in writes the kubeconfig.
    const inherited = { ...process.env };
    delete inherited.PULUMI_BACKEND_URL;
    delete inherited.KUBECONFIG;
    this.env = {
      ...inherited,
      ...minikubeEnv,
      PATH: `${minikubeEnv.PATH.split(path.delimiter)[0]}${path.delimiter}${engineBin}${path.delimiter}${process.env.PATH}`,
      HOME: scratchDir('koa-user-home-'),
      PULUMI_HOME: scratchDir('koa-user-pulumi-home-'),
      PULUMI_CONFIG_PASSPHRASE: passphrase,
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      // The engine and its plugins leave temp files (the kubernetes provider a kubeconfig with the token).
      TMPDIR: scratchDir('koa-user-tmp-'),
    };
  }

  /** `pulumi …` by hand, as the README says to after `npm run up` chose the project-local backend. */
  get pulumiEnv(): NodeJS.ProcessEnv {
    return { ...this.env, PULUMI_BACKEND_URL: `file://${path.join(this.dir, '.pulumi')}` };
  }

  /**
   * Runs a command in its own process group, killed (the whole group: npm, bash, pulumi, its plugins) after
   * `timeoutMs` or when this test process exits: a timed-out test once left a `pulumi up` running.
   */
  run(command: string, args: string[], env: NodeJS.ProcessEnv = this.env, onLine?: (line: string) => void, timeoutMs = 20 * 60_000): Promise<CommandRun> {
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn(command, args, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const killGroup = () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      process.once('exit', killGroup);
      const timer = setTimeout(() => {
        output += `\n(killed after ${timeoutMs / 1000} s)\n`;
        killGroup();
      }, timeoutMs);
      let output = '';
      let partial = '';
      const take = (chunk: Buffer) => {
        const text = chunk.toString();
        output += text;
        if (!onLine) return;
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) onLine(line);
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.on('close', (code) => {
        clearTimeout(timer);
        process.removeListener('exit', killGroup);
        resolve({ code: code ?? 1, output, seconds: (Date.now() - started) / 1000 });
      });
    });
  }

  /** The README's main job: `npm run up -- --yes`. */
  up(onLine?: (line: string) => void): Promise<CommandRun> {
    return this.run('npm', ['run', 'up', '--', '--yes'], this.env, onLine);
  }

  async pulumi(args: string[]): Promise<string> {
    const result = await this.run('pulumi', [...args, '--non-interactive'], this.pulumiEnv);
    if (result.code !== 0) throw new Error(`pulumi ${args.join(' ')} failed (${result.code}):\n${result.output}`);
    return result.output;
  }

  /** Replaces `from` with `to` in a file of the copy (a user's edit); returns a function that undoes it. */
  edit(file: string, from: string | RegExp, to: string): () => void {
    const full = path.join(this.dir, file);
    const before = readFileSync(full, 'utf8');
    const after = before.replace(from, to);
    if (after === before) throw new Error(`${file}: nothing to replace`);
    writeFileSync(full, after);
    return () => writeFileSync(full, before);
  }
}
