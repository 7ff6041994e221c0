/**
 * The stand-in's own step, which minikube does not have (its builder writes into the node's image store):
 * an image built in devkit/images' dockerd, moved into the node's containerd. `docker save` writes every
 * layer (about 220 MB, the base image's included) and `ctr images import` of that archive re-reads and
 * re-stores all of it: about 6 s a build here, more than the build itself. So the archive is taken apart as
 * it streams and only what containerd lacks is imported: an OCI layout with the manifest, the config and
 * the new layers (after a code change, one); the layers containerd has are named by digest, not sent.
 * On a node that has none of them (a first build, a new cluster) that is the whole image.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dockerd } from '../images/dockerd';
import type { LocalNode } from '../node/node';

interface Layer {
  digest: string;
  size: number;
  /** Where its bytes are, when containerd lacks it. */
  file?: string;
}

/** A tar reader for `docker save`'s archive (ustar; Go's archive/tar): regular files and symlinks. */
class SavedArchive extends Writable {
  readonly files = new Map<string, Layer | Buffer>();
  private readonly links = new Map<string, string>();
  private header = Buffer.alloc(0);
  private entry?: { name: string; left: number; pad: number; hash?: ReturnType<typeof createHash>; out?: number; tmp?: string; body?: Buffer[] };
  private paxName?: string;

  constructor(
    private readonly scratch: string,
    private readonly have: Set<string>,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: string, done: (error?: Error) => void): void {
    try {
      let offset = 0;
      while (offset < chunk.length) {
        if (!this.entry) {
          const need = 512 - this.header.length;
          this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + need)]);
          offset += Math.min(need, chunk.length - offset);
          if (this.header.length === 512) this.start(this.header);
          continue;
        }
        const entry = this.entry;
        if (entry.left > 0) {
          const part = chunk.subarray(offset, offset + entry.left);
          offset += part.length;
          entry.left -= part.length;
          entry.hash?.update(part);
          if (entry.out !== undefined) writeSync(entry.out, part);
          entry.body?.push(Buffer.from(part));
          if (entry.left === 0) this.finish(entry);
        }
        if (entry.left === 0) {
          const skip = Math.min(entry.pad, chunk.length - offset);
          offset += skip;
          entry.pad -= skip;
          if (entry.pad === 0) this.entry = undefined;
        }
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  private start(header: Buffer): void {
    this.header = Buffer.alloc(0);
    if (header.every((byte) => byte === 0)) return; // the two zero blocks at the end
    const text = (from: number, length: number) => header.subarray(from, from + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(text(124, 12).trim() || '0', 8);
    const type = text(156, 1) || '0';
    const prefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? text(345, 155) : ''; // GNU headers keep times there
    let name = this.paxName ?? (prefix ? `${prefix}/${text(0, 100)}` : text(0, 100));
    this.paxName = undefined;
    name = name.replace(/^\.\//, '');
    const entry: NonNullable<SavedArchive['entry']> = { name, left: size, pad: (512 - (size % 512)) % 512 };
    if (type === 'x') entry.body = []; // a PAX header: its path= record names the next entry
    else if (type === '2') this.links.set(name, path.posix.normalize(path.posix.join(path.posix.dirname(name), text(157, 100))));
    else if (type === '0' && name.endsWith('/layer.tar')) {
      entry.hash = createHash('sha256');
      entry.tmp = path.join(this.scratch, `layer-${this.files.size}`);
      entry.out = openSync(entry.tmp, 'w');
    } else if (type === '0' && (name.endsWith('.json') || name === 'oci-layout')) entry.body = []; // metadata only; anything else is skipped
    this.entry = entry;
    if (size === 0) this.finish(entry);
    if (entry.left === 0 && entry.pad === 0) this.entry = undefined;
  }

  private finish(entry: NonNullable<SavedArchive['entry']>): void {
    if (entry.hash) {
      closeSync(entry.out!);
      const digest = `sha256:${entry.hash.digest('hex')}`;
      const size = statSync(entry.tmp!).size;
      if (this.have.has(digest)) {
        rmSync(entry.tmp!);
        this.files.set(entry.name, { digest, size });
      } else {
        this.files.set(entry.name, { digest, size, file: entry.tmp });
      }
      entry.hash = undefined;
    } else if (entry.body) {
      const body = Buffer.concat(entry.body);
      entry.body = undefined;
      const pax = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (pax) this.paxName = pax[1];
      else this.files.set(entry.name, body);
    }
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // A stream cut off or failed mid-layer: close (and drop) the layer being written.
    if (this.entry?.out !== undefined && this.entry.hash) {
      closeSync(this.entry.out);
      rmSync(this.entry.tmp!, { force: true });
    }
    this.entry = undefined;
    done(error);
  }

  /** A saved file by name, following the symlinks `docker save` makes for a layer it already wrote. */
  get(name: string): Layer | Buffer | undefined {
    for (let hops = 0; hops < 10 && this.links.has(name); hops += 1) name = this.links.get(name)!;
    return this.files.get(name);
  }
}

/** A ustar archive written to a file: an OCI image layout (oci-layout, index.json, blobs/sha256/…). */
function writeTar(file: string, entries: Array<{ name: string; body?: Buffer; from?: string; size: number }>): void {
  const out = openSync(file, 'w');
  try {
    for (const entry of entries) {
      const header = Buffer.alloc(512);
      header.write(entry.name, 0, 100);
      header.write('0000644\0', 100);
      header.write('0000000\0', 108);
      header.write('0000000\0', 116);
      header.write(`${entry.size.toString(8).padStart(11, '0')}\0`, 124);
      header.write('00000000000\0', 136);
      header.write('        ', 148);
      header.write('0', 156);
      header.write('ustar\0', 257);
      header.write('00', 263);
      let sum = 0;
      for (const byte of header) sum += byte;
      header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
      writeSync(out, header);
      if (entry.body) writeSync(out, entry.body);
      else if (entry.from) {
        const source = openSync(entry.from, 'r');
        try {
          const buffer = Buffer.alloc(1 << 20);
          for (let read; (read = readSync(source, buffer)) > 0; ) writeSync(out, buffer.subarray(0, read));
        } finally {
          closeSync(source);
        }
      }
      const pad = (512 - (entry.size % 512)) % 512;
      if (pad) writeSync(out, Buffer.alloc(pad));
    }
    writeSync(out, Buffer.alloc(1024));
  } finally {
    closeSync(out);
  }
}

/** Moves `reference` from the builder into the node's containerd, sending only the blobs it lacks. */
export async function transferImage(daemon: Dockerd, node: LocalNode, reference: string): Promise<{ layers: number; sent: number }> {
  const have = new Set((await node.ctr(['content', 'ls', '-q'])).split('\n').map((line) => line.trim()).filter(Boolean));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'koa-minikube-transfer-'));
  try {
    const archive = new SavedArchive(scratch, have);
    const stream = new PassThrough();
    // pipeline: a parse failure destroys the stream with its error, which stops the docker CLI
    // (dockerd.ts kills it when its sink errs) instead of leaving it blocked on a full pipe.
    await Promise.all([daemon.docker(['save', reference], { stdout: stream }), pipeline(stream, archive)]);
    if (archive.get('oci-layout')) {
      throw new Error(`docker save ${reference} wrote an OCI layout (Docker 25 or later): the stand-in reads the docker save format of Debian bookworm's docker.io (20.10)`);
    }

    const saved = JSON.parse(String(archive.get('manifest.json') ?? '[]')) as Array<{ Config: string; Layers: string[] }>;
    if (saved.length !== 1) throw new Error(`docker save ${reference}: expected one image in manifest.json, found ${saved.length}`);
    const config = archive.get(saved[0].Config);
    if (!Buffer.isBuffer(config)) throw new Error(`docker save ${reference}: no config ${saved[0].Config}`);
    const layers = saved[0].Layers.map((name) => {
      const layer = archive.get(name);
      if (!layer || Buffer.isBuffer(layer)) throw new Error(`docker save ${reference}: no layer ${name}`);
      return layer;
    });
    const blob = (body: Buffer) => ({ digest: `sha256:${createHash('sha256').update(body).digest('hex')}`, size: body.length, body });
    const configBlob = blob(config);
    const manifest = blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configBlob.digest, size: configBlob.size },
          layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size })),
        }),
      ),
    );
    const tag = reference.slice(reference.lastIndexOf(':') + 1);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest.digest, size: manifest.size, annotations: { 'io.containerd.image.name': reference, 'org.opencontainers.image.ref.name': tag } }],
      }),
    );
    const blobName = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;
    const sent = new Map<string, Layer>();
    for (const layer of layers) if (layer.file && !sent.has(layer.digest)) sent.set(layer.digest, layer);
    const file = path.join(scratch, 'image.tar');
    const layout = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
    writeTar(file, [
      { name: 'oci-layout', body: layout, size: layout.length },
      { name: 'index.json', body: index, size: index.length },
      { name: blobName(manifest.digest), body: manifest.body, size: manifest.size },
      { name: blobName(configBlob.digest), body: configBlob.body, size: configBlob.size },
      ...[...sent.values()].map((layer) => ({ name: blobName(layer.digest), from: layer.file, size: layer.size })),
    ]);
    await node.ctr(['images', 'import', file]);
    return { layers: layers.length, sent: sent.size };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
