/**
 * The first half of `minikube image build DIR`, on the host: the directory packed into a temporary
 * tar as minikube packs it (cmd/minikube/cmd/image.go createTar → saveFile `build.*.tar`), by
 * devkit/go/minikube-pack, which runs minikube's CreateTarStream (third_party/go-dockerclient/tar.go)
 * on the libraries and versions minikube pins (docker/docker's pkg/archive, moby/patternmatcher).
 * So `.dockerignore` decides what reaches the node exactly as it does with minikube: the Dockerfile is
 * sent only when it is not excluded or when `-f` names it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureGoTool } from '../go-build';
import { GO_MODULES, cacheEntry } from '../paths';

function packer(log: (line: string) => void): string {
  const dir = cacheEntry('minikube-pack', ['minikube-pack']);
  const [binary] = ensureGoTool(
    { what: 'minikube-pack (devkit/go/minikube-pack)', firstBuild: 'under a minute', into: { dir, names: ['minikube-pack'] }, build: { cwd: path.join(GO_MODULES, 'minikube-pack'), packages: ['.'], ldflags: '-s -w' } },
    log,
  );
  return binary;
}

export interface PackedContext {
  /** The tar, named `build.<random>.tar` like minikube's temporary file. */
  tar: string;
  remove(): void;
}

/** Packs `dir` (with `-f dockerFile` when given); rejects with minikube's "Failed to save dir" message. */
export async function packContext(dir: string, dockerFile: string | undefined, log: (line: string) => void): Promise<PackedContext> {
  const binary = packer(log);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'koa-minikube-pack-'));
  const tar = path.join(scratch, `build.${path.basename(scratch).slice(-6)}.tar`);
  const args = [...(dockerFile ? ['-f', dockerFile] : []), dir, tar];
  const stderr = await new Promise<string>((resolve) => {
    let text = '';
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('close', (code) => resolve(code === 0 ? '' : text.trim() || `minikube-pack exited ${code}`));
  });
  const remove = () => rmSync(scratch, { recursive: true, force: true });
  if (stderr) {
    remove();
    throw new Error(stderr);
  }
  return { tar, remove };
}
