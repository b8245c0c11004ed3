/**
 * The one list of the blobs a bundle image names (bundle.json's BundleImage): its own manifest or index, each
 * carried platform's manifest, config and layers, then, when asked, the publishers' artifacts about it. The contract
 * (what a bundle carries), a delta's base, `diff` and `inspect` all count from here.
 */
import type {Digest} from '../oci/digest.js'
import type {BundleImage} from './layout.js'

export interface ImageBlob {
  digest: Digest
  size: number
  mediaType: string
}

export interface ImageBlobsOptions {
  /** Include the publishers' signatures, attestations, SBOMs and referrers (they travel in the bundle, not in runtimes). */
  artifacts?: boolean
}

/** Every blob of `image`, in bundle order; a blob named twice (a layer shared by two platforms) is yielded twice. */
export function* imageBlobs(image: BundleImage, options: ImageBlobsOptions = {}): Generator<ImageBlob> {
  yield {digest: image.digest, size: image.size, mediaType: image.mediaType}
  for (const p of image.platforms ?? []) {
    yield {digest: p.digest, size: p.size, mediaType: p.mediaType}
    yield p.config
    yield* p.layers ?? []
  }
  if (!options.artifacts) return
  for (const a of image.artifacts ?? []) {
    yield {digest: a.digest, size: a.size, mediaType: a.mediaType}
    yield a.config
    yield* a.layers
  }
}

/** Every blob of `images` once (first mention wins), by digest. */
export function uniqueBlobs(images: Iterable<BundleImage>, options: ImageBlobsOptions = {}): Map<Digest, ImageBlob> {
  const out = new Map<Digest, ImageBlob>()
  for (const image of images) for (const blob of imageBlobs(image, options)) if (!out.has(blob.digest)) out.set(blob.digest, blob)
  return out
}
