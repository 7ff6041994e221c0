/**
 * The guide's own Flask app (devkit/tools/guide-app), for `npm run bench` to put beside the service: a
 * venv built once per requirements and Python (in ~/.cache/koa-mongodb, reused by every later run), and
 * a runner that serves it with gunicorn on a given database and says what CPU it has used.
 *
 * gunicorn runs with its defaults (one sync worker), bound to loopback on a free port: the guide gives no
 * server settings of its own (its Dockerfile runs `flask run`, Werkzeug's development server; the issue's
 * figure for the guide's app is under gunicorn, and so is this one).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureAptPackages } from './images/apt';
import { CACHE_DIR, REPO_ROOT } from './paths';
import { freePort } from './ports';
import { cpuOfTree } from './proc-cpu';
import { supervise, waitReady } from './supervisor';

export const GUIDE_APP_DIR = path.join(REPO_ROOT, 'devkit', 'tools', 'guide-app');
const REQUIREMENTS = path.join(GUIDE_APP_DIR, 'requirements.txt');

/** A venv with the guide's packages (its `python`), or why there is none. */
export type GuideVenv = { python: string } | { missing: string };

/** The python3 on PATH, as its real executable, or undefined. */
function findPython(): string | undefined {
  const result = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

const canApt = () => process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;

function run(file: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(file, args, { encoding: 'utf8', env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error?.message ?? ''}`.trim() };
}

/**
 * The venv for the guide's app, built on first use: `python3 -m venv`, then `pip install --require-hashes`
 * of requirements.txt (pymongo 3.12 is compiled from source: gcc and the Python headers give it its C
 * extensions). On Debian as root, what is missing of python3, python3-venv, python3-dev and gcc is
 * installed first, as the devkit installs its other Debian packages (devkit/images/apt.ts). Elsewhere a
 * missing python3 or venv module is an answer (`missing`), not an error: the bench runs without the column.
 */
export function ensureGuideVenv(log: (line: string) => void = console.log): GuideVenv {
  const where = (python: string) => {
    const version = run(python, ['--version']).output;
    const key = createHash('sha256').update(readFileSync(REQUIREMENTS)).update(python).update(version).digest('hex').slice(0, 12);
    return { version, venv: path.join(CACHE_DIR, `guide-app-venv-${key}`) };
  };
  let python = findPython();
  const cached = python && path.join(where(python).venv, 'bin', 'python');
  if (cached && existsSync(cached)) return { python: cached };
  // Debian's own python3 (or none): what a venv with a compiled pymongo needs, from apt.
  if ((!python || python.startsWith('/usr/bin/')) && canApt()) {
    ensureAptPackages(['python3', 'python3-venv', 'python3-dev', 'gcc'], log);
    python = findPython();
  }
  if (!python) return { missing: 'no python3 on PATH (install python3 and python3-venv)' };
  const { version, venv } = where(python);
  const venvPython = path.join(venv, 'bin', 'python');
  if (existsSync(venvPython)) return { python: venvPython };

  // Built aside and renamed into place, so an interrupted build or a second bench at once never leaves a
  // half venv behind. A venv moved keeps working when run as `bin/python -m …` (only its scripts'
  // #! lines name the directory it was made in, and none is used).
  mkdirSync(CACHE_DIR, { recursive: true });
  const building = `${venv}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  try {
    log(`building the guide app's venv (${version}) in ${venv}`);
    const made = run(python, ['-m', 'venv', building]);
    if (!made.ok) return { missing: `\`${python} -m venv\` failed (on Debian: apt-get install python3-venv): ${made.output.split('\n').slice(-1)[0]}` };
    const pip = run(path.join(building, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--require-hashes', '-r', REQUIREMENTS]);
    if (!pip.ok) return { missing: `pip install -r ${path.relative(REPO_ROOT, REQUIREMENTS)} failed: ${pip.output.split('\n').slice(-3).join(' ')}` };
    // Pure-Python BSON would make the guide's app look slower than it is: no column rather than a wrong one.
    const native = run(path.join(building, 'bin', 'python'), ['-c', 'import bson, pymongo; assert bson.has_c() and pymongo.has_c()']);
    if (!native.ok) return { missing: 'pymongo was built without its C extensions (install gcc and the Python headers, e.g. apt-get install gcc python3-dev)' };
    try {
      renameSync(building, venv);
    } catch (error) {
      if (!existsSync(venvPython)) throw error; // else another run finished first: use its venv
    }
    return { python: venvPython };
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
}

export interface GuideApp {
  url: string;
  /** gunicorn's master. */
  pid: number;
  /** CPU used so far by the master and its workers, in µs. */
  cpuUs(): number;
  stop(): Promise<void>;
}

/** gunicorn serving the guide's app on `uri`, its collection `data` in database `dbName`; resolves once `GET /` answers. */
export async function startGuideApp(python: string, uri: string, dbName: string): Promise<GuideApp> {
  const port = await freePort();
  const server = supervise("the guide's app (gunicorn)", python, {
    args: ['-m', 'gunicorn', '--bind', `127.0.0.1:${port}`, '--chdir', GUIDE_APP_DIR, 'wsgi:app'],
    // PYTHONDONTWRITEBYTECODE: no __pycache__ in the repository.
    env: { PATH: process.env.PATH ?? '', MONGODB_URI: uri, GUIDE_DB: dbName, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(server, () => fetch(`${url}/`).then((res) => res.ok, () => false), { what: "the guide's app to answer GET /", timeoutMs: 30_000, everyMs: 100 });
  } catch (error) {
    await server.stop(2000);
    throw error;
  }
  return {
    url,
    pid: server.pid,
    cpuUs: () => cpuOfTree(server.pid),
    // SIGTERM: gunicorn stops its (idle) workers and exits; SIGKILL after 5 s (workers then see their
    // parent gone and exit within a second).
    stop: async () => void (await server.stop(5000)),
  };
}
