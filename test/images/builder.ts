/**
 * The deterministic test image builder. `buildImageSet()` writes small multi-platform images as an OCI
 * image layout (`blobs/sha256/…`, `index.json`, plus `images.json` = TestImage[]); the same options give
 * the same digests on every run. Each image has a base layer shared by all images of its platform, a
 * layer of its own (`layerSize` pseudo-random bytes), and — for the host's architecture of pause and
 * busybox images — a layer holding Debian's static busybox so a real runtime can start it.
 */
import {existsSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import type {TestImage, TestPlatformImage} from '../harness/peers.js'
import {defaultImageSpecs, manyImageSpecs, splitName, type ImageFormat, type ImageSpec} from './catalog.js'
import {blobPath, FIXED_CREATED, writeBlob, writeLayer, type WrittenLayer} from './layer.js'
import {mapLimit} from '../../src/util/async.js'

export const MEDIA = {
  docker: {
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
  oci: {
    index: 'application/vnd.oci.image.index.v1+json',
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
} as const

export const DEFAULT_PLATFORMS = ['linux/amd64', 'linux/arm64/v8']
export const BUSYBOX_STATIC = '/bin/busybox'
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

export interface BuildOptions {
  /** Output directory (an OCI image layout); created if missing. */
  dir: string
  /** Images to make (default: kubeadm v1.31.6 set + runtime pauses + docker.io/library/busybox:1.36). */
  images?: ImageSpec[]
  /** Append this many tiny images (registry.k8s.io/kubeferry-many/image-NNNN:v1) for load tests. */
  many?: number
  /** Keep only these names (canonical). */
  only?: string[]
  /** os/arch[/variant] list (default linux/amd64 + linux/arm64/v8). */
  platforms?: string[]
  /** Pseudo-random bytes in each image's own layer (default 1024; ~100 MB for benchmarks). */
  layerSize?: number
  /** Pseudo-random bytes in the shared base layer (default 2048). */
  baseLayerSize?: number
  /** gzip level for layers (default 6; 1 is much faster for large layers). */
  gzipLevel?: number
  /** Static busybox to put into runnable images (default /bin/busybox when present; false = all synthetic). */
  busybox?: string | false
  /** Images built at once (default 4). */
  concurrency?: number
}

export interface ImageSet {
  dir: string
  /** `dir/blobs` — blobs live at `blobDir/sha256/<hex>`. */
  blobDir: string
  images: TestImage[]
  /** Path of a blob of this set. */
  blobPath(digest: string): string
}

/** OCI `os/arch/variant` of the machine (amd64, arm64/v8). */
export function hostPlatformString(): string {
  if (process.arch === 'x64') return 'linux/amd64'
  if (process.arch === 'arm64') return 'linux/arm64/v8'
  return `linux/${process.arch}`
}

function platformObject(platform: string): {architecture: string; os: string; variant?: string} {
  const [os, architecture, variant] = platform.split('/')
  return {architecture, os, ...(variant ? {variant} : {})}
}

const sameArch = (a: string, b: string): boolean => a.split('/').slice(0, 2).join('/') === b.split('/').slice(0, 2).join('/')

function entrypoint(spec: ImageSpec, runnable: boolean): {Entrypoint?: string[]; Cmd?: string[]} {
  if (runnable && spec.runnable === 'pause') return {Entrypoint: ['/bin/busybox', 'sleep', 'infinity']}
  if (runnable && spec.runnable === 'busybox') return {Cmd: ['/bin/busybox', 'sh']}
  const {repository} = splitName(spec.name)
  return {Entrypoint: [`/usr/local/bin/${repository.split('/').pop()}`]}
}


export async function buildImageSet(options: BuildOptions): Promise<ImageSet> {
  const dir = options.dir
  const blobDir = join(dir, 'blobs')
  await mkdir(join(blobDir, 'sha256'), {recursive: true})
  const platforms = options.platforms ?? DEFAULT_PLATFORMS
  const layerSize = options.layerSize ?? 1024
  const baseLayerSize = options.baseLayerSize ?? 2048
  const gzipLevel = options.gzipLevel ?? 6
  const busybox = options.busybox === false ? undefined : (options.busybox ?? (existsSync(BUSYBOX_STATIC) ? BUSYBOX_STATIC : undefined))
  const host = hostPlatformString()

  let specs = [...(options.images ?? defaultImageSpecs()), ...manyImageSpecs(options.many ?? 0)]
  if (options.only) specs = specs.filter((s) => options.only!.includes(s.name))

  const base = new Map<string, WrittenLayer>()
  for (const platform of platforms) {
    base.set(
      platform,
      await writeLayer(
        blobDir,
        [
          {path: 'etc/kubeferry-base', content: {text: `kubeferry test base layer for ${platform}\n`}},
          {path: 'usr/share/kubeferry/base.bin', content: {random: baseLayerSize, seed: `base:${platform}`}},
        ],
        gzipLevel,
      ),
    )
  }
  const busyboxLayer = busybox ? await writeLayer(blobDir, [{path: 'bin/busybox', mode: 0o755, content: {file: busybox}}], gzipLevel) : undefined

  const images = await mapLimit(specs, options.concurrency ?? 4, async (spec) => {
    const {repository, tag} = splitName(spec.name)
    const media = MEDIA[spec.format satisfies ImageFormat]
    const perPlatform: TestPlatformImage[] = []
    const indexEntries: Record<string, unknown>[] = []
    for (const platform of platforms) {
      const runnable = Boolean(spec.runnable && busyboxLayer && sameArch(platform, host))
      const own = await writeLayer(
        blobDir,
        [
          {path: 'etc/kubeferry-image', content: {text: `${spec.name} ${platform}\n`}},
          {path: `usr/share/kubeferry/${repository.replaceAll('/', '_')}-${tag}.bin`, content: {random: layerSize, seed: `${spec.name}:${platform}`}},
        ],
        gzipLevel,
      )
      const layers = [base.get(platform)!, ...(runnable ? [busyboxLayer!] : []), own]
      const p = platformObject(platform)
      const config = {
        architecture: p.architecture,
        os: p.os,
        ...(p.variant ? {variant: p.variant} : {}),
        created: FIXED_CREATED,
        author: 'kubeferry test image builder',
        config: {Env: [PATH_ENV], ...entrypoint(spec, runnable), WorkingDir: '/', Labels: {'org.opencontainers.image.title': spec.name}},
        rootfs: {type: 'layers', diff_ids: layers.map((l) => l.diffId)},
        history: layers.map((l, i) => ({created: FIXED_CREATED, created_by: `kubeferry-test layer ${i}`, comment: l === own ? 'image layer' : l === busyboxLayer ? 'busybox-static' : 'base layer'})),
      }
      const configBlob = await writeBlob(blobDir, Buffer.from(JSON.stringify(config)))
      const manifest = {
        schemaVersion: 2,
        mediaType: media.manifest,
        config: {mediaType: media.config, size: configBlob.size, digest: configBlob.digest},
        layers: layers.map((l) => ({mediaType: media.layer, size: l.size, digest: l.digest})),
      }
      const manifestBlob = await writeBlob(blobDir, Buffer.from(JSON.stringify(manifest, null, 3)))
      indexEntries.push({mediaType: media.manifest, size: manifestBlob.size, digest: manifestBlob.digest, platform: p})
      perPlatform.push({
        platform,
        digest: manifestBlob.digest,
        manifestMediaType: media.manifest,
        manifestSize: manifestBlob.size,
        config: configBlob.digest,
        configSize: configBlob.size,
        layers: manifest.layers,
        runnable,
      })
    }
    const index = {schemaVersion: 2, mediaType: media.index, manifests: indexEntries}
    const indexBlob = await writeBlob(blobDir, Buffer.from(JSON.stringify(index, null, 3)))
    const image: TestImage = {name: spec.name, repository, tag, digest: indexBlob.digest, mediaType: media.index, size: indexBlob.size, platforms: perPlatform}
    return image
  })

  await writeFile(join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  const layoutIndex = {
    schemaVersion: 2,
    mediaType: MEDIA.oci.index,
    manifests: images.map((image) => ({
      mediaType: image.mediaType,
      size: image.size,
      digest: image.digest,
      annotations: {'io.containerd.image.name': image.name, 'org.opencontainers.image.ref.name': image.name},
    })),
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify(layoutIndex, null, 2))
  await writeFile(join(dir, 'images.json'), JSON.stringify(images, null, 2))
  return {dir, blobDir, images, blobPath: (digest) => blobPath(blobDir, digest)}
}

/** Every distinct blob digest of the images (layers, configs, manifests, indexes). */
export function allBlobDigests(images: TestImage[]): string[] {
  const set = new Set<string>()
  for (const image of images) {
    set.add(image.digest)
    for (const p of image.platforms) {
      set.add(p.digest)
      set.add(p.config)
      for (const l of p.layers) set.add(l.digest)
    }
  }
  return [...set].sort()
}
