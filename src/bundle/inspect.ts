/**
 * What a bundle holds (after the tar index has checked the structure): images with digests, platforms and sizes as
 * the walker reads them from index.json and the manifests (images.ts), roles (which pause is kubeadm's, which a
 * runtime's) and what it was built from (bundle.json, the only place that records them).
 */
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import {BUNDLE_SCHEMA_VERSION, type BundleDelta, type BundleMetadata} from './layout.js'
import {reliedOn} from './contract.js'
import {assertBundleValid} from './verify.js'
import {uniqueBlobs} from './image-blobs.js'
import {walkBundleImages} from './images.js'
import {BundleReader} from './reader.js'
import {BundleSource} from './source.js'
import {inspectArtifacts, type InspectedArtifact} from './inspect-artifacts.js'

export interface InspectedImage {
  name: string
  digest: string
  mediaType: string
  role?: string
  sources: string[]
  platforms: string[]
  sparse: boolean
  /** Bytes of this image's blobs for the carried platforms (shared blobs counted in each image). */
  size: number
  /** The publishers' signatures, attestations, SBOMs and referrers carried (absent when none). */
  artifacts?: InspectedArtifact[]
}

export interface InspectResult {
  path: string
  fileSize: number
  tool: BundleMetadata['tool']
  created?: string
  request: BundleMetadata['request']
  platforms: string[]
  dockerPlatform: string
  images: InspectedImage[]
  /** Pause images and who asks for each (kubeadm, runtime …). */
  pause: {name: string; for: string[]}[]
  blobs: BundleMetadata['blobs']
  /** A delta bundle: its base, and the bytes it does not carry (the full bundle would be fileSize + savedBytes, about). */
  delta?: {base: BundleDelta['base']; for: BundleDelta['for']; reliedBlobs: number; savedBytes: number}
  /** create --trusted-root: the Sigstore trusted root carried for keyless signatures. */
  trustedRoot?: BundleMetadata['trustedRoot']
}

export async function inspectBundle(path: string): Promise<InspectResult> {
  // Never describe what is not there: structure, references and manifests are checked first (blobs are hashed
  // only by `verify`, which reads every byte).
  await assertBundleValid(path, {quick: true})
  const reader = await BundleReader.open(path)
  const meta = await reader.metadata()
  if (meta.schemaVersion !== BUNDLE_SCHEMA_VERSION || !Array.isArray(meta.images)) {
    throw new KubeferryError('BUNDLE_INVALID', `${path}: unsupported bundle.json (schemaVersion ${String(meta.schemaVersion)})`, {hint: 'use the kubeferry version that made the bundle, or rebuild it'})
  }
  const source = new BundleSource(reader, reliedOn(meta))
  const walked = await walkBundleImages(source, meta)
  // Artifacts' manifests through the walker; a Sigstore bundle referrer's layer (its signer) read whole, being small.
  const artifactSource = {...source.walkSource(), blobPrefix: async (digest: Digest, max: number) => source.blobPrefix(digest, max)}
  const carried = await Promise.all(walked.map(({image}) => inspectArtifacts(artifactSource, {...image, artifacts: meta.images.find((i) => i.name === image.name)?.artifacts})))
  const images: InspectedImage[] = walked.map(({image}, n) => {
    const size = [...uniqueBlobs([image]).values()].reduce((n, b) => n + b.size, 0)
    return {
      name: image.name,
      digest: image.digest,
      mediaType: image.mediaType,
      ...(image.role ? {role: image.role} : {}),
      sources: image.sources ?? [],
      platforms: image.platforms.map((p) => p.platform),
      sparse: image.sparse,
      size,
      ...(carried[n].length ? {artifacts: carried[n]} : {}),
    }
  })
  const pause = images
    .filter((i) => (i.role ?? '').split(',').includes('pause') || /\/pause:/.test(i.name))
    .map((i) => ({name: i.name, for: i.sources.length ? i.sources : ['--image']}))
  return {
    path,
    fileSize: reader.index.size,
    tool: meta.tool,
    ...(meta.created ? {created: meta.created} : {}),
    request: meta.request,
    platforms: meta.platforms,
    dockerPlatform: meta.dockerPlatform,
    images,
    pause,
    blobs: meta.blobs,
    ...(meta.trustedRoot ? {trustedRoot: meta.trustedRoot} : {}),
    ...(meta.delta ? {delta: {base: meta.delta.base, for: meta.delta.for, reliedBlobs: meta.delta.relies.length, savedBytes: meta.delta.savedBytes}} : {}),
  }
}
