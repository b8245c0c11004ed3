/**
 * A small, deterministic bundle for the import tests, written by hand after src/bundle/layout.ts (the real writer
 * lives in src/bundle/writer.ts; these tests only need a valid bundle of synthetic multi-platform images).
 */
import {createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {basename} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {gzipSync} from 'node:zlib'
import tar from 'tar-stream'
import {
  ANNOTATION_CONTAINERD_NAME,
  ANNOTATION_REF_NAME,
  blobPath,
  BUNDLE_SCHEMA_VERSION,
  dockerFragmentPath,
  INSTALL_SCRIPT_FILE,
  METADATA_FILE,
  type BundleImage,
  type BundleMetadata,
} from '../../src/bundle/layout.js'
import {renderInstallScript} from '../../src/bundle/install-script.js'
import type {Digest} from '../../src/oci/digest.js'

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

  const images: BundleImage[] = []
  const dockerEntries = new Map<string, Array<{Config: string; RepoTags: string[]; Layers: string[]}>>()
  const indexEntries: Array<Record<string, unknown>> = []
  for (const spec of specs) {
    const manifestType = spec.kind === 'docker' ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json'
    const configType = spec.kind === 'docker' ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json'
    const layerType = spec.kind === 'docker' ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip'
    const indexType = spec.kind === 'docker' ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json'
    const children: Array<Record<string, unknown>> = []
    const bundlePlatforms: BundleImage['platforms'] = []
    for (const platform of [...platforms, ...absent]) {
      const [os, architecture, variant] = platform.split('/')
      const base = await layer({[`etc/base-${architecture}`]: `base layer for ${platform}${salt}\n`})
      const own = await layer({[`etc/${spec.name.replaceAll('/', '_')}`]: filler(`${spec.name}${platform}${salt}`, options.layerSize ?? 2048)})
      const config = put(Buffer.from(JSON.stringify({architecture, os, ...(variant ? {variant} : {}), config: {Entrypoint: ['/pause']}, rootfs: {type: 'layers', diff_ids: [base.diffId, own.diffId]}})))
      const manifestLayers = [base.blob, own.blob].map((b) => ({mediaType: layerType, digest: b.digest, size: b.bytes.length}))
      const manifest = put(Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: manifestType, config: {mediaType: configType, digest: config.digest, size: config.bytes.length}, layers: manifestLayers})))
      children.push({mediaType: manifestType, digest: manifest.digest, size: manifest.bytes.length, platform: {architecture, os, ...(variant ? {variant} : {})}})
      if (absent.includes(platform)) {
        for (const d of [manifest.digest, config.digest, base.blob.digest, own.blob.digest]) blobs.delete(d)
        continue
      }
      bundlePlatforms.push({platform, digest: manifest.digest, mediaType: manifestType, size: manifest.bytes.length, config: {digest: config.digest, size: config.bytes.length, mediaType: configType}, layers: manifestLayers})
      const list = dockerEntries.get(platform) ?? []
      list.push({Config: blobPath(config.digest), RepoTags: [spec.name], Layers: [base.blob, own.blob].map((b) => blobPath(b.digest))})
      dockerEntries.set(platform, list)
    }
    const index = put(Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: indexType, manifests: children})))
    const [registry, ...rest] = spec.name.split('/')
    const repoTag = rest.join('/')
    const colon = repoTag.lastIndexOf(':')
    images.push({
      name: spec.name,
      registry,
      repository: repoTag.slice(0, colon),
      tag: repoTag.slice(colon + 1),
      digest: index.digest,
      mediaType: indexType,
      size: index.bytes.length,
      role: spec.role,
      sources: spec.sources,
      sparse: absent.length > 0,
      platforms: bundlePlatforms,
    })
    indexEntries.push({mediaType: indexType, digest: index.digest, size: index.bytes.length, annotations: {[ANNOTATION_CONTAINERD_NAME]: spec.name, [ANNOTATION_REF_NAME]: spec.name}})
  }
  const meta: BundleMetadata = {
    schemaVersion: BUNDLE_SCHEMA_VERSION,
    tool: {name: 'kubeferry', version: 'test'},
    request: {platforms},
    platforms,
    dockerPlatform: platforms[0],
    images,
    blobs: {count: blobs.size, totalSize: [...blobs.values()].reduce((s, b) => s + b.length, 0)},
  }
  const files: Record<string, Buffer | string> = {
    'oci-layout': '{"imageLayoutVersion":"1.0.0"}',
    'index.json': JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: indexEntries}),
    'manifest.json': JSON.stringify(dockerEntries.get(platforms[0])),
    [METADATA_FILE]: JSON.stringify(meta, null, 2),
  }
  for (const platform of platforms) files[dockerFragmentPath(platform)] = await tarOf({'manifest.json': JSON.stringify(dockerEntries.get(platform))})
  for (const [digest, bytes] of blobs) files[blobPath(digest)] = bytes

  const pack = tar.pack()
  const hash = createHash('sha256')
  const output = createWriteStream(out)
  const done = pipeline(pack, async function* (source) {
    for await (const chunk of source) {
      hash.update(chunk as Buffer)
      yield chunk
    }
  }, output)
  const entries = Object.entries(files)
  entries.push([INSTALL_SCRIPT_FILE, renderInstallScript(meta)])
  entries.sort(([a], [b]) => (a < b ? -1 : 1))
  for (const [name, body] of entries) {
    pack.entry({name, mode: name === INSTALL_SCRIPT_FILE ? 0o755 : 0o644, mtime: new Date(0), uid: 0, gid: 0}, Buffer.from(body))
  }
  pack.finalize()
  await done
  if (options.checksumFile !== false) await writeFile(`${out}.sha256`, `${hash.digest('hex')}  ${basename(out)}\n`)
  return meta
}

// node dist/test/load/make-bundle.js OUT [platform...]
if (process.argv[1]?.endsWith('make-bundle.js') && process.argv[2]) {
  const meta = await makeBundle(process.argv[2], {platforms: process.argv.length > 3 ? process.argv.slice(3) : undefined, layerSize: Number(process.env.LAYER_SIZE ?? 2048)})
  process.stdout.write(`${meta.images.length} images, ${meta.blobs.count} blobs\n`)
}
