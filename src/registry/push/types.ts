/** What push takes and gives: its options, the registry operations it needs, its events and its report. */
import type {Readable} from 'node:stream'
import type {Digest} from '../../oci/digest.js'
import type {Reference} from '../../oci/reference.js'
import type {Descriptor, RawManifest} from '../../oci/types.js'
import type {NameRules, PushDestination} from '../rename.js'

export type PlatformPolicy = 'auto' | 'sparse' | 'filtered'
export const PLATFORM_POLICIES: PlatformPolicy[] = ['auto', 'sparse', 'filtered']

/** The registry operations push needs (RegistryClient implements them). */
export interface PushRegistry {
  blobExists(repo: Reference, digest: Digest): Promise<boolean>
  mountBlob(repo: Reference, digest: Digest, fromRepository: string): Promise<boolean>
  uploadBlob(repo: Reference, desc: {digest: Digest; size: number}, open: () => Promise<Readable>): Promise<void>
  headManifest(ref: Reference): Promise<{digest: Digest; mediaType: string; size: number} | undefined>
  putManifest(repo: Reference, tagOrDigest: string, raw: RawManifest): Promise<Digest>
}

export interface PushOptions {
  destination: PushDestination
  rules: NameRules
  platformPolicy?: PlatformPolicy
  /** Parallel blob uploads (default 8); checks, mounts and manifest PUTs run up to as many again alongside. */
  concurrency?: number
  overwrite?: boolean
  dryRun?: boolean
  /**
   * A check that must pass before anything is written (the bundle's verification). Reading the bundle's manifests
   * and asking the registry what is there (HEAD only) overlap with it; if it fails, its error is the one thrown.
   */
  gate?: Promise<unknown>
  onEvent?: (event: PushEvent) => void
  /** Lists a pushed OCI 1.1 referrer for its subject (referrers API, else the tag schema; registry/referrers.ts). */
  addReferrer?: AddReferrer
}

export type TargetStatus = 'present' | 'pushed' | 'overwritten' | 'would-push' | 'would-overwrite' | 'conflict'

export interface TargetResult {
  /** Destination reference, e.g. `registry.corp:5000/k8s/pause:3.10`. */
  reference: string
  repository: string
  tag?: string
  status: TargetStatus
  /** What the destination name points at after the push (or would). */
  digest: Digest
  /** The bundle's (upstream) digest. Differs from `digest` only when a filtered index was pushed. */
  upstreamDigest: Digest
  filtered: boolean
  /** CoreDNS's kubeadm alias. */
  alias: boolean
  /** The digest that was there before (conflict/overwrite). */
  previousDigest?: Digest
}

export interface ImageResult {
  source: string
  platforms: string[]
  sparse: boolean
  targets: TargetResult[]
}

export interface PushReport {
  destination: string
  dryRun: boolean
  platformPolicy: PlatformPolicy
  images: ImageResult[]
  blobs: {uploaded: number; mounted: number; present: number; bytesUploaded: number; toUpload?: number; bytesToUpload?: number}
  manifests: {pushed: number; present: number}
  /** The publishers' artifacts the bundle carries (absent when it carries none); in a dry run `pushed` is what would be. */
  artifacts?: ArtifactPushReport
  durationMs: number
}

/** The counters of the report that the steps add to as they go. */
export type PushCounts = Pick<PushReport, 'blobs' | 'manifests'>

/** An image with names to push: the bytes of its blobs (each once) and where it goes. */
export interface PlannedImage {
  source: string
  bytes: number
  references: string[]
}

export type PushEvent =
  /** `pushing`: the images with names to push; `bytes`: their blobs' bytes, each blob once. */
  | {type: 'planned'; images: number; targets: number; toPush: number; pushing: PlannedImage[]; bytes: number}
  | {type: 'target-done'; target: TargetResult; source: string}
  /** Every name of the image is pushed. */
  | {type: 'image-done'; source: string; targets: TargetResult[]}
  | {type: 'blob'; digest: Digest; repository: string; action: 'uploaded' | 'mounted' | 'present'; size: number}
  /**
   * Progress: `bytes` more of an image's blobs are in place (streamed, found present or mounted; negative when a
   * retry starts a blob again). `source` undefined: the whole push (each blob once).
   */
  | {type: 'bytes'; source?: string; bytes: number}
  | {type: 'filtered'; reference: string; upstreamDigest: Digest; digest: Digest; reason: string}

export type Emit = (event: PushEvent) => void

export interface Blob {
  digest: Digest
  size: number
}

/** Lists a pushed OCI 1.1 referrer for its subject (registry/referrers.ts addReferrer). */
export type AddReferrer = (repo: Reference, subject: Digest, desc: Descriptor) => Promise<'api' | 'tag' | 'present'>

/** What push did with the publishers' artifacts (push/artifacts.ts): each one per destination repository. */
export interface ArtifactPushReport {
  pushed: number
  present: number
  /** Destination references left out, with why. */
  skipped: Array<{reference: string; reason: string}>
}
