/**
 * The scheduled backups on the stack's backups volume (the claim of components/backups.ts), read from the
 * laptop: `npm run backup -- --list` and `npm run restore -- --from NAME`.
 *
 * Nothing on the laptop can mount the claim, so the tools start a short-lived reader pod in the stack's
 * namespace: the admin image (the claim's annotation names it), the claim mounted READ-ONLY, non-root, a
 * read-only root file system, no service account token, no NetworkPolicy label (it talks to nobody), and an
 * activeDeadlineSeconds that ends it even if the tool is killed. `kubectl exec` lists the directory (the
 * image's list-backups.js, the same listing the CronJob prunes by) and streams one file with `cat`; the pod
 * is deleted when the tool ends.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { ArchiveError } from '../../admin/src/backup/archive';
import type { BackupFile } from '../../admin/src/backup/files';
import { kubectlArgs, UsageError, type Target } from './target';

/** Fixed names of the program's backups (components/backups.ts, component "mongodb-backups"; a test checks them). */
export const BACKUP_CLAIM = 'mongodb-backups';
export const BACKUP_CRONJOB = 'mongodb-backups';
export const BACKUP_MOUNT = '/backups';
export const READER_IMAGE_ANNOTATION = 'koa-mongodb/reader-image';
/** The reader pod ends itself after this long, whatever happens to the tool that made it. */
const READER_DEADLINE_SECONDS = 900;

type ClusterTarget = Extract<Target, { kind: 'cluster' }>;

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** kubectl with `args`, `input` on its stdin; never throws for a non-zero exit (the caller words the error). */
function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'ENOENT' ? 'kubectl is not on PATH; install it (the backups are read through the cluster)' : error.message)),
    );
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

export interface BackupVolume {
  /** The backups, oldest first. */
  list(): Promise<BackupFile[]>;
  /** Streams backup `name` into the local file `path`; its size in bytes. */
  fetch(name: string, path: string): Promise<number>;
  /** In words, for the output. */
  describe: string;
  close(): Promise<void>;
}

/** The reader pod's manifest: read-only everything, nothing it could reach. */
export function readerPod(target: ClusterTarget, name: string, image: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: target.namespace,
      labels: { 'app.kubernetes.io/name': 'mongodb-backups-reader', 'app.kubernetes.io/component': 'backup-reader', 'app.kubernetes.io/part-of': 'koa-mongodb' },
    },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: READER_DEADLINE_SECONDS,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 0,
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'reader',
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['sleep', String(READER_DEADLINE_SECONDS)],
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
          securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          volumeMounts: [{ name: 'backups', mountPath: BACKUP_MOUNT, readOnly: true }],
        },
      ],
      volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: BACKUP_CLAIM, readOnly: true } }],
    },
  };
}

/** Starts the reader pod on the stack's backups claim; close() deletes it. */
export async function openBackupVolume(target: Target, timeoutSeconds = 120): Promise<BackupVolume> {
  if (target.kind !== 'cluster') throw new UsageError('--list and --from read the stack\'s backups volume through the cluster; unset MONGODB_URI');
  const where = `claim ${BACKUP_CLAIM} in namespace ${target.namespace} (context ${target.context})`;
  const claim = await kubectl(kubectlArgs(target, 'get', 'pvc', BACKUP_CLAIM, '-o', 'json'));
  if (claim.code !== 0) {
    throw new Error(/NotFound|not found/.test(claim.stderr) ? `no backups volume: ${where} does not exist. Is the stack up (npm run up)?` : `cannot read ${where}: ${firstLine(claim.stderr)}`);
  }
  const image = (JSON.parse(claim.stdout) as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.[READER_IMAGE_ANNOTATION];
  if (!image) throw new Error(`${where} does not name an image to read it with (annotation ${READER_IMAGE_ANNOTATION}); in imageMode prebuilt, set adminImage and run npm run up`);

  const pod = `mongodb-backups-reader-${randomBytes(3).toString('hex')}`;
  const created = await kubectl(kubectlArgs(target, 'create', '-f', '-'), JSON.stringify(readerPod(target, pod, image)));
  if (created.code !== 0) throw new Error(`cannot start a reader pod for ${where}: ${firstLine(created.stderr)}`);
  const remove = async () => void (await kubectl(kubectlArgs(target, 'delete', 'pod', pod, '--wait=false', '--ignore-not-found')).catch(() => undefined));
  const onSignal = () => {
    void remove().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const close = async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await remove();
  };
  try {
    const ready = await kubectl(kubectlArgs(target, 'wait', '--for=condition=Ready', `pod/${pod}`, `--timeout=${timeoutSeconds}s`));
    if (ready.code !== 0) {
      const status = await kubectl(kubectlArgs(target, 'get', 'pod', pod, '-o', 'jsonpath={.status.containerStatuses[0].state.waiting.reason} {.status.conditions[?(@.type=="PodScheduled")].message}'));
      throw new Error(`the reader pod ${pod} for ${where} did not start within ${timeoutSeconds} s (${status.stdout.trim() || firstLine(ready.stderr)})`);
    }
  } catch (error) {
    await close();
    throw error;
  }

  const list = async (): Promise<BackupFile[]> => {
    const listed = await kubectl(kubectlArgs(target, 'exec', pod, '--', 'node', 'dist/list-backups.js', BACKUP_MOUNT));
    if (listed.code !== 0) throw new Error(`cannot list ${where}: ${firstLine(listed.stderr)}`);
    return JSON.parse(listed.stdout) as BackupFile[];
  };

  return {
    describe: where,
    list,
    async fetch(name, path) {
      const known = await list();
      const file = known.find((entry) => entry.name === name);
      if (!file) {
        throw new ArchiveError(`there is no backup ${name} on ${where} (${known.length ? `there are: ${known.map((entry) => entry.name).join(', ')}` : 'it holds none yet'}); see npm run backup -- --list`);
      }
      // The name is one of the listed ones (BACKUP_NAME: letters, digits and dots), never a path of the user's.
      const child = spawn('kubectl', kubectlArgs(target, 'exec', pod, '--', 'cat', `${BACKUP_MOUNT}/${file.name}`), { stdio: ['ignore', 'pipe', 'pipe'] });
      const out = createWriteStream(path, { mode: 0o600 });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.stdout.pipe(out);
      const [code] = await Promise.all([
        new Promise<number>((resolve, reject) => {
          child.once('error', reject);
          child.once('close', (exit) => resolve(exit ?? 1));
        }),
        new Promise<void>((resolve, reject) => {
          out.once('finish', resolve);
          out.once('error', reject);
        }),
      ]);
      if (code !== 0) throw new Error(`cannot read ${name} from ${where}: ${firstLine(stderr)}`);
      // The size the volume listed; restore then checks the content itself, whole, before writing anything.
      if (out.bytesWritten !== file.bytes) throw new Error(`read ${out.bytesWritten} of the ${file.bytes} bytes of ${name} from ${where}`);
      return out.bytesWritten;
    },
    close,
  };
}
