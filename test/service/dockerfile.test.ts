import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const SERVICE_DIR = path.resolve(__dirname, '..', '..', 'service');
const dockerfile = readFileSync(path.join(SERVICE_DIR, 'Dockerfile'), 'utf8');
const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

/**
 * No Docker engine here, so the image's runtime contract is proven directly:
 * a production-only install of the service, then the image's exact CMD.
 */
describe('service image contract (Dockerfile)', function () {
  this.timeout(180_000);

  it('pins its base image, runs as a non-root user, and uses an exec-form CMD', () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
    assert.match(base, /^node:\d+\.\d+\.\d+-alpine\d+\.\d+$/, `base image "${base}" is pinned to an exact release`);
    assert.doesNotMatch(dockerfile, /:latest\b/);
    assert.match(finalStage, /^USER 1000:1000$/m, 'final stage runs as uid 1000');
    assert.match(finalStage, /^CMD \[.*\]$/m, 'exec form, so SIGTERM reaches node directly');
    assert.match(finalStage, /npm|production-deps/, 'final stage takes production dependencies only');
    assert.doesNotMatch(finalStage, /^RUN npm ci(?!.*--omit=dev)/m);
  });

  it('its .dockerignore keeps the context to what the build copies', () => {
    const ignore = readFileSync(path.join(SERVICE_DIR, '.dockerignore'), 'utf8');
    assert.match(ignore, /^\*$/m, 'everything is excluded by default');
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/']) {
      assert.match(ignore, new RegExp(`^!${needed.replace('.', '\\.')}`, 'm'));
    }
  });

  it('a production-only install starts with the image\'s CMD and answers /healthz', async () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(finalStage)![1]) as string[];
    const prodInstall = /^RUN (npm ci --omit=dev.*)$/m.exec(dockerfile)![1].split(/\s+/);
    assert.ok(existsSync(path.join(SERVICE_DIR, 'dist', 'main.js')), 'run `npm run build` first');

    const app = mkdtempSync(path.join(os.tmpdir(), 'image-contract-'));
    try {
      for (const file of ['package.json', 'package-lock.json']) cpSync(path.join(SERVICE_DIR, file), path.join(app, file));
      execFileSync(prodInstall[0], prodInstall.slice(1), { cwd: app, stdio: 'pipe', env: { ...process.env, NODE_ENV: 'production' } });
      cpSync(path.join(SERVICE_DIR, 'dist'), path.join(app, 'dist'), { recursive: true });

      for (const devOnly of ['typescript', '@types/node', '@types/koa']) {
        assert.ok(!existsSync(path.join(app, 'node_modules', devOnly)), `${devOnly} must not be in the image`);
      }
      for (const runtime of ['koa', '@koa/router', 'mongodb', 'pino']) {
        assert.ok(existsSync(path.join(app, 'node_modules', runtime)), `${runtime} is installed`);
      }

      const binary = cmd[0] === 'node' ? process.execPath : cmd[0];
      const child = spawn(binary, cmd.slice(1), {
        cwd: app,
        env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', MONGODB_URI: 'mongodb://127.0.0.1:1/' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const port = await new Promise<number>((resolve, reject) => {
        readline.createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line.includes('"msg":"listening"')) resolve((JSON.parse(line) as { port: number }).port);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ok' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
