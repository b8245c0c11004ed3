/**
 * A throwaway bundle writer for push/config tests (until `create` is used everywhere): takes an image set from the
 * test image builder and writes a tar following src/bundle/layout.ts — `blobs/sha256/…`, `index.json` with the
 * containerd name annotation, `kubeferry/bundle.json`, `oci-layout` — sorted, regular files only.
 * `platforms` keeps only those platforms' content; the indexes still list every platform (a sparse bundle).
 */
import {createReadStream, createWriteStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'
import type {TestImage} from '../harness/peers.js'
import type {ImageSet} from '../images/builder.js'
import {BLOBS_DIR, INDEX_FILE, METADATA_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, type BundleImage, type BundleMetadata} from '../../src/bundle/layout.js'

export interface FixtureOptions {
  /** Keep only these images (canonical names). */
  only?: string[]
  /** Keep only these platforms' manifests and blobs (default: all). */
  platforms?: string[]
}

function role(name: string): string {
  const repo = name.replace(/^[^/]+\//, '').replace(/:.*$/, '')
  if (repo === 'coredns/coredns') return 'coredns'
  if (repo.startsWith('kube-') || repo === 'pause' || repo === 'etcd') return repo
  return 'extra'
}

export async function writeFixtureBundle(set: ImageSet, out: string, options: FixtureOptions = {}): Promise<{images: TestImage[]; blobs: string[]}> {
  const images = set.images.filter((i) => !options.only || options.only.includes(i.name))
  const keep = (p: string) => !options.platforms || options.platforms.includes(p)
  const blobs = new Set<string>()
  const bundleImages: BundleImage[] = []
  for (const image of images) {
    blobs.add(image.digest)
    const present = image.platforms.filter((p) => keep(p.platform))
    for (const p of present) {
      blobs.add(p.digest)
      blobs.add(p.config)
      for (const l of p.layers) blobs.add(l.digest)
    }
    const [registry] = image.name.split('/')
    bundleImages.push({
      name: image.name,
      registry,
      repository: image.repository,
      tag: image.tag,
      digest: image.digest as BundleImage['digest'],
      mediaType: image.mediaType,
      size: image.size,
      role: role(image.name),
      sparse: present.length < image.platforms.length,
      platforms: present.map((p) => ({
        platform: p.platform,
        digest: p.digest as BundleImage['digest'],
        mediaType: p.manifestMediaType,
        size: p.manifestSize,
        config: {digest: p.config as BundleImage['digest'], size: p.configSize, mediaType: ''},
        layers: p.layers.map((l) => ({digest: l.digest as BundleImage['digest'], size: l.size, mediaType: l.mediaType})),
      })),
    })
  }
  const platforms = [...new Set(bundleImages.flatMap((i) => i.platforms.map((p) => p.platform)))].sort()
  const sorted = [...blobs].sort()
  let totalSize = 0
  const sizes = new Map<string, number>()
  for (const d of sorted) {
    const {size} = await stat(set.blobPath(d))
    sizes.set(d, size)
    totalSize += size
  }
  const metadata: BundleMetadata = {
    schemaVersion: 1,
    tool: {name: 'kubeferry', version: 'test-fixture'},
    request: {images: images.map((i) => i.name), platforms},
    platforms,
    dockerPlatform: platforms[0],
    images: bundleImages,
    blobs: {count: sorted.length, totalSize},
  }
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((i) => ({
      mediaType: i.mediaType,
      digest: i.digest,
      size: i.size,
      annotations: {'io.containerd.image.name': i.name, 'org.opencontainers.image.ref.name': i.name},
    })),
  }

  const pack = tar.pack()
  const header = (name: string, size: number) => ({name, size, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), type: 'file' as const})
  const writing = pipeline(pack, createWriteStream(out))
  for (const d of sorted) {
    const entry = pack.entry(header(`${BLOBS_DIR}${d.slice(7)}`, sizes.get(d)!))
    await pipeline(createReadStream(set.blobPath(d)), entry)
  }
  const small = (name: string, text: string) => new Promise<void>((resolve, reject) => pack.entry(header(name, Buffer.byteLength(text)), text, (e) => (e ? reject(e) : resolve())))
  await small(INDEX_FILE, JSON.stringify(index, null, 2))
  await small(METADATA_FILE, JSON.stringify(metadata, null, 2))
  await small(OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT)
  pack.finalize()
  await writing
  return {images, blobs: sorted}
}
