/**
 * The two shapes every flow of images is made of. A source answers "the manifest for this reference or digest" and
 * "the bytes of this blob (optionally from an offset)": a registry, a bundle and the blob cache are sources. A sink
 * takes images from any source: the bundle writer, a registry, a runtime. `create` is registry → bundle, `push`
 * bundle → registry, `load` bundle → runtime, `serve` bundle → HTTP; a future registry → registry copy needs nothing
 * new. Images travel as walked trees (walk.ts), so every sink sees manifests already checked by the same rules.
 */
import type {Hash} from 'node:crypto'
import type {Readable} from 'node:stream'
import type {Digest} from './digest.js'
import type {Reference} from './reference.js'
import type {Descriptor, RawManifest} from './types.js'
import type {TreeNode, WalkSource} from './walk.js'

export interface BlobReadOptions {
  /**
   * Start at this byte: the stream yields the rest of the blob, and the caller, who holds the prefix, finishes the
   * digest check. From 0 (the default) the source verifies digest and size while the bytes flow.
   */
  offset?: number
  signal?: AbortSignal
  /** Called with each chunk's length as it is read (progress). */
  onBytes?: (bytes: number) => void
  /** Read size hint for bulk copies. */
  highWaterMark?: number
  /**
   * Continue a download an earlier run kept the first `offset` bytes of (their hash in `hash`): the source asks for
   * the rest and still verifies the whole blob. The stream's `startsAt` says where its first byte is: `offset` when
   * the source honoured it, 0 when it sent the whole blob instead (a registry ignoring Range).
   */
  resume?: ResumeFrom
}

/** A download to continue: the hash of the kept bytes (`offset` of them), to be fed the rest. */
export interface ResumeFrom {
  offset: number
  hash: Hash
}

export interface ImageSource {
  /** Names the source in messages: a registry host, a bundle's path, the cache's directory. */
  readonly label: string
  /**
   * The index or manifest `ref` names: the one with `digest` when given, else by the reference's own digest or tag.
   * Bytes exactly as stored. Undefined when the source does not hold it (a platform left out of a bundle); a
   * registry throws NOT_FOUND instead, naming the reference.
   */
  manifest(ref: Reference, digest?: Digest): Promise<RawManifest | undefined>
  /** The blob's bytes (see BlobReadOptions.offset for who verifies what). `ref` names the repository, where that matters. */
  blob(ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, options?: BlobReadOptions): Promise<Readable>
  /** The size of a blob the source holds without reading it, undefined when absent; omitted by sources that cannot tell cheaply. */
  blobSize?(digest: Digest): number | undefined
  /**
   * The manifest under `tag` of `ref`'s repository, undefined when there is none: cosign's `sha256-<hex>.sig|.att|.sbom`
   * tags (issue 19). Omitted by sources that hold no artifacts.
   */
  findTagged?(ref: Reference, tag: string): Promise<RawManifest | undefined>
  /**
   * The OCI 1.1 referrers of `digest` (the referrers API, else the referrers tag schema); [] when there are none.
   * `warn`: told when a bound on the list's pages or length cut it short (what was read is returned).
   */
  referrers?(ref: Reference, digest: Digest, warn?: (message: string) => void): Promise<Descriptor[]>
  /** A hint: artifact lookups about `repo` will follow (a registry may start learning what it holds). */
  expectArtifactLookups?(repo: Reference): void
}

/** One named image of a source with its manifest tree read and checked. */
export interface SourcedImage {
  /** Canonical reference as loaders will name it (`registry.k8s.io/pause:3.10`). */
  name: string
  ref: Reference
  tree: TreeNode
}

/** Where images go. `R` is what the sink reports per image (pushed digests, imported names, …). */
export interface ImageSink<R = void> {
  write(image: SourcedImage, source: ImageSource, options?: {signal?: AbortSignal}): Promise<R>
}

/** The walker's view of a source, for the images of one repository. */
export function walkSourceOf(source: ImageSource, ref: Reference): WalkSource {
  return {
    readManifest: async (desc) => (await source.manifest(ref, desc.digest))?.bytes,
    ...(source.blobSize ? {blobSize: (digest: Digest) => source.blobSize!(digest)} : {}),
  }
}
