/**
 * A small, deterministic bundle for the import tests: synthetic multi-platform images (gzip layers that unpack, shared
 * base layers, Docker list and OCI index kinds, a sparse index) served from memory to the REAL planner and writer.
 */
import {createHash} from 'node:crypto'
import {rm} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {gzipSync} from 'node:zlib'
import tar from 'tar-stream'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {planBundle, type ImageSource} from '../../src/bundle/plan.js'
import {writeBundle} from '../../src/bundle/writer.js'
import type {Digest} from '../../src/oci/digest.js'
import type {RawManifest} from '../../src/oci/types.js'
import {formatReference} from '../../src/oci/reference.js'
const sha = (data: Buffer | string): Digest => `sha256:${createHash('sha256').update(data).digest('hex')}`

function tarOf(files: Record<string, Buffer | string>): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on('data', (c) => {
    chunks.push(c as Buffer)
  })
  for (const [name, body] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    pack.entry({name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0}, Buffer.from(body))
  }
  pack.finalize()
  return new Promise((resolve) => pack.on('end', () => resolve(Buffer.concat(chunks))))
}

export interface TestImageSpec {
  name: string
  role?: string
  /** 'docker' = Docker manifest list + v2 manifests, 'oci' = OCI index + manifests */
  kind: 'docker' | 'oci'
  sources?: string[]
}

export const DEFAULT_IMAGES: TestImageSpec[] = [
  {name: 'registry.k8s.io/pause:3.10', role: 'pause', kind: 'docker', sources: ['kubeadm v1.31.6']},
  {name: 'registry.k8s.io/kube-proxy:v1.31.6', role: 'kube-proxy', kind: 'docker', sources: ['kubeadm v1.31.6']},
  {name: 'registry.k8s.io/coredns/coredns:v1.11.3', role: 'coredns', kind: 'oci', sources: ['kubeadm v1.31.6']},
  {name: 'docker.io/library/busybox:1.36', role: 'extra', kind: 'oci', sources: ['--image']},
]

export interface MakeBundleOptions {
  platforms?: string[]
  /** Extra platforms listed in each index but absent from the bundle (a sparse index). */
  absentPlatforms?: string[]
  images?: TestImageSpec[]
  /** Bytes of random-ish content in each image's own layer. */
  layerSize?: number
  /** Write `<out>.sha256` beside the bundle. */
  checksumFile?: boolean
  salt?: string
}

interface Blob {
  digest: Digest
  bytes: Buffer
}

/** Writes the bundle to `out` and returns its metadata. */
export async function makeBundle(out: string, options: MakeBundleOptions = {}): Promise<BundleMetadata> {
  const platforms = options.platforms ?? ['linux/amd64', 'linux/arm64']
  const absent = options.absentPlatforms ?? ['linux/s390x']
  const specs = options.images ?? DEFAULT_IMAGES
  const salt = options.salt ?? ''
  const blobs = new Map<Digest, Buffer>()
  const put = (bytes: Buffer): Blob => {
    const digest = sha(bytes)
    blobs.set(digest, bytes)
    return {digest, bytes}
  }
  const layer = async (files: Record<string, string>) => {
    const raw = await tarOf(files)
    const gz = gzipSync(raw, {level: 1})
    return {blob: put(gz), diffId: sha(raw)}
  }
  const filler = (seed: string, size: number): string => {
    let text = ''
    let n = 0
    while (text.length < size) text += createHash('sha256').update(`${seed}:${n++}`).digest('hex')
    return text.slice(0, size)
  }

  const manifests = new Map<string, {bytes: Buffer; mediaType: string}>()
  const tops = new Map<string, Digest>()
  for (const spec of specs) {
    const manifestType = spec.kind === 'docker' ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json'
    const configType = spec.kind === 'docker' ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json'
    const layerType = spec.kind === 'docker' ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip'
    const indexType = spec.kind === 'docker' ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json'
    const children: Array<Record<string, unknown>> = []
    for (const platform of [...platforms, ...absent]) {
      const [os, architecture, variant] = platform.split('/')
      const base = await layer({[`etc/base-${architecture}`]: `base layer for ${platform}${salt}\n`})
      const own = await layer({[`etc/${spec.name.replaceAll('/', '_')}`]: filler(`${spec.name}${platform}${salt}`, options.layerSize ?? 2048)})
      const config = put(Buffer.from(JSON.stringify({architecture, os, ...(variant ? {variant} : {}), config: {Entrypoint: ['/pause']}, rootfs: {type: 'layers', diff_ids: [base.diffId, own.diffId]}})))
      const manifestLayers = [base.blob, own.blob].map((b) => ({mediaType: layerType, digest: b.digest, size: b.bytes.length}))
      const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: manifestType, config: {mediaType: configType, digest: config.digest, size: config.bytes.length}, layers: manifestLayers}))
      manifests.set(sha(manifest), {bytes: manifest, mediaType: manifestType})
      children.push({mediaType: manifestType, digest: sha(manifest), size: manifest.length, platform: {architecture, os, ...(variant ? {variant} : {})}})
    }
    const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: indexType, manifests: children}))
    manifests.set(sha(index), {bytes: index, mediaType: indexType})
    tops.set(spec.name, sha(index))
  }
  const raw = (digest: Digest): RawManifest => {
    const m = manifests.get(digest)
    if (!m) throw new Error(`test source: no manifest ${digest}`)
    return {bytes: m.bytes, mediaType: m.mediaType, digest}
  }
  const source: ImageSource = {
    label: 'test source',
    manifest: async (ref, digest) => raw(digest ?? tops.get(formatReference(ref))!),
    blob: async (_ref, desc) => {
      const bytes = blobs.get(desc.digest) ?? manifests.get(desc.digest)?.bytes
      if (!bytes) throw new Error(`test source: no blob ${desc.digest}`)
      return Readable.from([bytes])
    },
  }
  const requests = specs.map((spec) => ({reference: spec.name, role: spec.role, sources: spec.sources}))
  const plan = await planBundle(source, requests, {platforms, skipMissingPlatforms: false})
  const result = await writeBundle({
    output: out,
    plan,
    request: {platforms},
    fsync: false,
    openBlob: async (blob) => Readable.from([blob.bytes ?? blobs.get(blob.digest) ?? manifests.get(blob.digest)!.bytes]),
  })
  if (options.checksumFile === false) await rm(result.checksumFile, {force: true})
  return result.metadata
}

// node dist/test/load/make-bundle.js OUT [platform...]
if (process.argv[1]?.endsWith('make-bundle.js') && process.argv[2]) {
  const meta = await makeBundle(process.argv[2], {platforms: process.argv.length > 3 ? process.argv.slice(3) : undefined, layerSize: Number(process.env.LAYER_SIZE ?? 2048)})
  process.stdout.write(`${meta.images.length} images, ${meta.blobs.count} blobs\n`)
}
