// Packs chosen images of an OCI image layout directory (the test image builder's output)
// into the uncompressed OCI archive tar that `ctr -n k8s.io images import` reads.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { TestImage } from '../harness/peers.js';

const EPOCH = new Date(0);

function blobFile(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return join(layoutDir, 'blobs', alg, hex);
}

/** Every blob an image needs: its index, each platform's manifest, config and layers. */
export function imageBlobDigests(image: TestImage): string[] {
  const out = new Set<string>([image.digest]);
  for (const p of image.platforms) {
    out.add(p.digest);
    out.add(p.config);
    for (const l of p.layers) out.add(l.digest);
  }
  return [...out];
}

/** Writes `tarPath` with `images` (named by `io.containerd.image.name`), blobs streamed from `layoutDir`. */
export async function writeImagesArchive(layoutDir: string, images: TestImage[], tarPath: string): Promise<void> {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((image) => ({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      annotations: { 'io.containerd.image.name': image.name, 'org.opencontainers.image.ref.name': image.tag },
    })),
  };
  const digests = [...new Set(images.flatMap(imageBlobDigests))].sort();
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(tarPath));
  const small = (name: string, body: string) =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0 }, body, (err) => (err ? reject(err) : resolve())),
    );
  await small('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await small('index.json', JSON.stringify(index));
  for (const digest of digests) {
    const file = blobFile(layoutDir, digest);
    const { size } = await stat(file);
    await new Promise<void>((resolve, reject) => {
      const entry = pack.entry(
        { name: `blobs/${digest.replace(':', '/')}`, size, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0 },
        (err) => (err ? reject(err) : resolve()),
      );
      createReadStream(file).on('error', reject).pipe(entry);
    });
  }
  pack.finalize();
  await written;
}
