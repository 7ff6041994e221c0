/**
 * OCI image archives made here without any registry or builder: one layer holding
 * the given files (static binaries), a config naming the entrypoint, in the OCI
 * layout that `ctr images import` reads, named by the `io.containerd.image.name`
 * annotation. Used for the pod sandbox (pause), the addons and the smoke test image.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ScratchImage {
  /** Full reference, e.g. localhost/koa-node/pause:3.10. */
  name: string;
  /** Path in the image → file on this machine; all made executable. */
  files: Record<string, string>;
  entrypoint: string[];
  cmd?: string[];
  env?: string[];
  /** Empty directories the program writes to (e.g. /tmp). */
  dirs?: string[];
  user?: string;
}

function tar(args: string[]): void {
  const result = spawnSync('tar', args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tar ${args.join(' ')} failed: ${result.stderr}`);
}

/** Writes the image as an OCI archive at `out` and returns its manifest digest. */
export function writeScratchImage(image: ScratchImage, out: string): string {
  const work = mkdtempSync(path.join(os.tmpdir(), 'koa-oci-'));
  try {
    const root = path.join(work, 'rootfs');
    for (const [inImage, source] of Object.entries(image.files)) {
      const target = path.join(root, inImage);
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(source, target);
    }
    for (const dir of image.dirs ?? []) mkdirSync(path.join(root, dir), { recursive: true, mode: 0o1777 });
    // Reproducible layer: fixed owner and time, sorted names, so an unchanged binary gives the same digest.
    const layerPath = path.join(work, 'layer.tar');
    tar(['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--mode=a+rX,u+w', '-cf', layerPath, '-C', root, '.']);

    const layout = path.join(work, 'layout');
    const blobs = path.join(layout, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const blob = (content: Buffer) => {
      const hex = createHash('sha256').update(content).digest('hex');
      writeFileSync(path.join(blobs, hex), content);
      return { digest: `sha256:${hex}`, size: content.length };
    };
    const layer = blob(readFileSync(layerPath));
    const config = blob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Entrypoint: image.entrypoint, Cmd: image.cmd, Env: image.env ?? ['PATH=/'], User: image.user ?? '', WorkingDir: '/' },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
          history: [{ created: '1970-01-01T00:00:00Z', created_by: 'devkit/node/oci-image.ts' }],
        }),
      ),
    );
    const manifest = blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    const tag = image.name.slice(image.name.lastIndexOf(':') + 1);
    writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: 'amd64', os: 'linux' },
            annotations: { 'io.containerd.image.name': image.name, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    tar(['--owner=0', '--group=0', '--numeric-owner', '-cf', out, '-C', layout, '.']);
    return manifest.digest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
