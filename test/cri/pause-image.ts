// A runnable pause image for the host architecture, as a one-image OCI archive that
// `ctr -n k8s.io images import` accepts: one uncompressed layer holding Debian's
// busybox-static as /bin/busybox, entrypoint sleeping until the runtime kills it.
// (The official multi-platform test images live in test/images/; this one is the
// CRI tests' own small stand-in so they do not depend on the builder.)
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';

export const BUSYBOX = '/bin/busybox';
const EPOCH = new Date(0);

function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

function tarBuffer(entries: { name: string; body?: Buffer; mode: number; type: 'file' | 'directory' }[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    const header = { name: e.name, type: e.type, mode: e.mode, mtime: EPOCH, uid: 0, gid: 0, size: e.body?.length ?? 0 };
    if (e.body) pack.entry(header, e.body);
    else pack.entry(header, () => undefined);
  }
  pack.finalize();
  return collected;
}

export interface PauseImage {
  /** Full reference the archive names (io.containerd.image.name). */
  name: string;
  /** Digest of the image manifest: what the runtime reports as repo digest. */
  manifestDigest: string;
  /** Digest of the config: containerd's image id. */
  configDigest: string;
  path: string;
}

/**
 * Writes `path` and returns the digests. Deterministic for a given name,
 * entrypoint and busybox binary.
 */
export async function writePauseImageArchive(
  path: string,
  name: string,
  entrypoint: string[] = [BUSYBOX, 'sleep', '2147483647'],
): Promise<PauseImage> {
  const busybox = await readFile(BUSYBOX);
  const layer = await tarBuffer([
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/busybox', type: 'file', mode: 0o755, body: busybox },
  ]);
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: goArch(),
      os: 'linux',
      created: EPOCH.toISOString(),
      config: { Entrypoint: entrypoint, WorkingDir: '/', User: '65535:65535' },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
      history: [{ created: EPOCH.toISOString(), created_by: 'kubeferry test/cri pause-image' }],
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const manifestDigest = sha256(manifest);
  const tag = name.slice(name.lastIndexOf(':') + 1);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          platform: { architecture: goArch(), os: 'linux' },
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  const blob = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;
  const archive = await tarBuffer([
    { name: 'oci-layout', type: 'file', mode: 0o644, body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', type: 'file', mode: 0o644, body: index },
    { name: 'blobs/', type: 'directory', mode: 0o755 },
    { name: 'blobs/sha256/', type: 'directory', mode: 0o755 },
    { name: blob(configDigest), type: 'file', mode: 0o644, body: config },
    { name: blob(layerDigest), type: 'file', mode: 0o644, body: layer },
    { name: blob(manifestDigest), type: 'file', mode: 0o644, body: manifest },
  ]);
  await pipeline(async function* () {
    yield archive;
  }, createWriteStream(path));
  return { name, manifestDigest, configDigest, path };
}
