/**
 * `create` as a library: check that the output can take a bundle (preflight.ts), plan (references → platforms →
 * blobs, each looked up in the store as it is found and, if missing, fetched into the content-addressed store at once,
 * in parallel: downloads.ts), check that the bundle fits the output (the rest of the downloads then go in tar order),
 * and write the bundle while the downloads run: the writer's copiers follow the blobs' temp files as their bytes land
 * (BlobFill), so every layer in flight is copied into the tar while it still downloads. A blob already verified in the
 * store is never fetched again, and what a stopped or killed build had fetched of a blob is continued
 * (store/partial.ts), so a rerun downloads only what is missing.
 *
 * What is verified where: a downloaded blob is hashed once, by the registry client while it streams (the store
 * trusts that DigestVerifier, see blob-store.ts), and the copier waits for that verdict before it takes the next
 * blob; a blob taken from the cache (verified by an earlier build) is hashed again while it is copied into the tar.
 * The tar itself is hashed in order while it fills (for BUNDLE.sha256, see tar-out.ts).
 */
import {setMaxListeners} from 'node:events'
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {BlobStore} from '../store/blob-store.js'
import type {Progress} from '../ui/progress.js'
import {planBundle, type BundlePlan, type ImageRequest, type ImageSource} from './plan.js'
import {carryArtifacts} from './artifacts.js'
import {ArtifactPrefetch} from './artifact-prefetch.js'
import type {Reference} from '../oci/reference.js'
import {mapLimit} from '../util/async.js'
import {baseMayHoldBlob, carriedPlan, deltaOf, type DeltaBase} from './delta.js'
import {BuildProgress} from './build-progress.js'
import {Downloads} from './downloads.js'
import type {BundleDelta, BundleLayer} from './layout.js'
import {checkBundleFits, checkOutputDir} from './preflight.js'
import {followFill, storedFile} from './blob-files.js'
import {bundleContents, writeBundle, type BundlePart, type BundleRequest} from './writer.js'

export interface BuildOptions {
  source: ImageSource
  store: BlobStore
  requests: ImageRequest[]
  platforms: string[]
  skipMissingPlatforms?: boolean
  concurrency?: number
  output: string
  request: BundleRequest
  sourceDateEpoch?: number
  fsync?: boolean
  progress?: Progress
  signal?: AbortSignal
  /** Write the bundle in parts of this many bytes (create --split, see part-files.ts). */
  partSize?: number
  /** Make a delta against what this base holds (create --base, see delta.ts). */
  base?: DeltaBase
  /** Carry the publishers' signatures, attestations, SBOMs and referrers (artifacts.ts); create's default. */
  artifacts?: {requireSigned?: boolean}
  /** Called with the plan (artifacts found) before anything is written; throw to refuse (create --verify-signatures). */
  beforeWrite?: (plan: BundlePlan) => Promise<void>
  /** create --trusted-root: the Sigstore trusted root to carry (a blob bundle.json's `trustedRoot` names). */
  trustedRoot?: {bytes: Buffer; descriptor: BundleLayer}
  /** Each phase's end, for `--debug`'s timeline (the HTTP exchanges are logged by the client). */
  log?: (message: string) => void
}

export interface BuildSummary {
  output: string
  sha256: string
  size: number
  checksumFile: string
  installScript: string
  /** With `partSize`: the parts in order and their checksum file (`output` itself is then not written). */
  parts?: BundlePart[]
  partsChecksumFile?: string
  images: number
  platforms: string[]
  dockerPlatform: string
  uniqueBlobs: number
  blobBytes: number
  /** Blobs (layers, configs) fetched by this build; `downloadedBytes` counts only the bytes it fetched. */
  downloadedBlobs: number
  downloadedBytes: number
  /** Of those, downloads that continued what an earlier run kept, and the bytes kept. */
  resumedBlobs: number
  resumedBytes: number
  /** Blobs (layers, configs) taken from the cache, not fetched. */
  cachedBlobs: number
  /** Manifests and indexes: always read from the registry while planning. */
  manifests: number
  /** The publishers' signatures, attestations, SBOMs and referrers carried (artifacts.ts). */
  artifacts: number
  seconds: number
  warnings: string[]
  /** A delta: what it was made against and the bytes it leaves out. */
  delta?: {base: BundleDelta['base']; for: BundleDelta['for']; reliedBlobs: number; savedBytes: number}
}

export async function buildBundle(options: BuildOptions): Promise<BuildSummary> {
  const startedAt = Date.now()
  const {store, source} = options
  const progress = options.progress
  const concurrency = options.concurrency ?? 8
  const abort = new AbortController()
  // Every download in flight listens on it twice (the source's stream and the store's pipeline), the copiers once
  // each: far more than Node's default of 10 before it warns of a leak on stderr.
  setMaxListeners(4 * concurrency + 16, abort.signal)
  const onOuterAbort = (): void => abort.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', onOuterAbort)
  const shown = new BuildProgress(progress)
  // Each blob's download begins as soon as the plan finds it, while the plan goes on (the writer, which needs the
  // whole plan, catches up from the files). Bytes fetched before the output was found able to take the bundle stay in
  // the cache for the next run if it was not.
  const downloads = new Downloads(store, source, concurrency, abort, shown.events)
  try {
    await checkOutputDir(options.output)
    progress?.note(`resolving ${options.requests.length} image reference(s)…`)
    const onBlob = (blob: Parameters<typeof downloads.want>[0], user: string): void => {
      shown.own(blob.digest, user)
      downloads.want(blob)
    }
    // The artifact lookups are sent as soon as each image's digests are known, beside the plan and the first downloads
    // (see artifact-prefetch.ts); carryArtifacts then mostly finds its answers there.
    const prefetch = options.artifacts ? new ArtifactPrefetch(source, concurrency) : undefined
    const planned = await planBundle(source, options.requests, {
      platforms: options.platforms,
      skipMissingPlatforms: options.skipMissingPlatforms,
      // Manifests are small and each image costs two round trips in a row (tag, then platforms): with 8 at a time a
      // kubeadm set of 10 images took four; twice --concurrency reads it in two.
      concurrency: 2 * concurrency,
      // a layer the base holds is not carried: its download never starts (one it may hold starts after deltaOf, if carried)
      onBlob: (blob, user) => (options.base && baseMayHoldBlob(options.base, blob) ? shown.own(blob.digest, user) : onBlob(blob, user)),
      ...(prefetch?.enabled ? {onImage: (ref: Reference, subjects: Digest[]) => prefetch.prefetch(ref, subjects), onReference: (ref: Reference) => prefetch.expect(ref)} : {}),
    })
    options.log?.(`planned ${planned.images.length} image(s), ${planned.blobs.length} blob(s)`)
    if (options.artifacts) {
      progress?.note(`looking up signatures, attestations and SBOMs of ${planned.images.length} image(s)…`)
      await carryArtifacts(prefetch?.enabled ? prefetch : source, planned, {concurrency, requireSigned: options.artifacts.requireSigned, onBlob}) // a delta carries them whole
      options.log?.(`artifacts looked up: ${planned.images.reduce((n, i) => n + (i.artifacts?.length ?? 0), 0)} found`)
    }
    if (options.trustedRoot) carryTrustedRoot(planned, options.trustedRoot)
    await options.beforeWrite?.(planned)
    const delta = options.base ? await deltaOf(planned, options.base, source, concurrency) : undefined
    const plan = delta ? carriedPlan(planned, delta) : planned
    if (downloads.error !== undefined) throw downloads.error
    const fetched = plan.blobs.filter((b) => !b.bytes)
    for (const blob of fetched) downloads.want(blob) // the layers held back for the delta (baseMayHoldBlob) that it carries

    // Manifests are small and already verified: keep them in the store too (a later build reads them from there), while
    // the downloads run. At most `concurrency` at once: each write holds a file handle until it is renamed (hundreds).
    const manifestsStored = mapLimit(plan.blobs.filter((b) => b.bytes), concurrency, (b) => store.putBytes(b, b.bytes!))
    manifestsStored.catch(() => undefined) // awaited once the bundle is written; a failure meanwhile is not unhandled
    const cached = await Promise.all(fetched.map((b) => downloads.wasCached(b.digest)))
    downloads.reorder((a, b) => (a < b ? -1 : a > b ? 1 : 0)) // every store lookup is done: all waiting ones are queued
    const contents = bundleContents(plan, options.request, options.sourceDateEpoch, delta) // once: its size here, its bytes in writeBundle
    const bundleBytes = contents.size
    const missingBytes = fetched.reduce((n, b, i) => n + (cached[i] ? 0 : b.size), 0)
    // what the downloads fetched meanwhile has already taken its space
    await checkBundleFits(options.output, bundleBytes, Math.max(0, missingBytes - downloads.downloadedBytes), store.root, plan.images.length, undefined, options.partSize)
    shown.start(plan, fetched, cached, bundleBytes)
    options.log?.(`writing ${bundleBytes} bytes, ${missingBytes} of them to fetch (${downloads.downloadedBytes} fetched while planning)`)
    if (options.log) downloads.drained().then(() => options.log!('every blob is fetched'), () => undefined)

    let result
    try {
      result = await writeBundle({
        output: options.output,
        plan,
        request: options.request,
        sourceDateEpoch: options.sourceDateEpoch,
        contents,
        fsync: options.fsync,
        partSize: options.partSize,
        signal: abort.signal,
        onTarBytes: (n) => progress?.bundleBytes(n),
        log: options.log,
        copiers: Math.min(concurrency, 16), // follow every download in flight, within 32 MiB of buffers
        openBlob: async (blob) => {
          const fill = await downloads.fillOf(blob.digest)
          return fill ? followFill(fill) : storedFile(store, blob)
        },
      })
    } catch (error) {
      downloads.fail(error)
      await downloads.drained().catch(() => undefined)
      throw failureOf(downloads, error, options.signal)
    }
    await downloads.drained()
    await manifestsStored
    for (const image of plan.images) progress?.itemDone(image.name)
    return {...summaryOf(plan, result, downloads, startedAt), ...(delta ? {delta: {base: delta.base, for: delta.for, reliedBlobs: delta.relies.length, savedBytes: delta.savedBytes}} : {})}
  } catch (error) {
    // A failed plan or write: stop the downloads still running (their temp files are removed) before reporting.
    downloads.fail(error)
    await downloads.drained().catch(() => undefined)
    throw failureOf(downloads, error, options.signal)
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
}

/** Add the trusted root's blob to the plan (bytes in memory, like a manifest; shown with the first image's progress). */
function carryTrustedRoot(plan: BundlePlan, root: {bytes: Buffer; descriptor: BundleLayer}): void {
  plan.trustedRoot = root.descriptor
  if (plan.blobs.some((b) => b.digest === root.descriptor.digest)) return
  const first = plan.images[0]
  plan.blobs.push({...root.descriptor, bytes: root.bytes, from: {registry: first.registry, repository: first.repository}, usedBy: [first.name]})
  plan.blobs.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
}

/**
 * What to report when the build stops: the interrupt itself if the caller aborted (every stage then fails with some
 * AbortError, which says nothing to an operator), else the first download failure, else `error`.
 */
function failureOf(downloads: Downloads, error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason
  return downloads.error ?? error
}

function summaryOf(plan: BundlePlan, result: Awaited<ReturnType<typeof writeBundle>>, downloads: Downloads, startedAt: number): BuildSummary {
  return {
    output: result.path,
    sha256: result.sha256,
    size: result.size,
    checksumFile: result.checksumFile,
    installScript: result.installScript,
    ...(result.parts ? {parts: result.parts, partsChecksumFile: result.partsChecksumFile} : {}),
    images: plan.images.length,
    platforms: plan.platforms,
    dockerPlatform: plan.dockerPlatform,
    uniqueBlobs: plan.blobs.length,
    blobBytes: plan.blobs.reduce((n, b) => n + b.size, 0),
    downloadedBlobs: downloads.downloadedBlobs,
    downloadedBytes: downloads.downloadedBytes,
    resumedBlobs: downloads.resumedBlobs,
    resumedBytes: downloads.resumedBytes,
    // Not fetched by this build: in the cache before, or stored meanwhile by another build sharing it.
    cachedBlobs: plan.blobs.filter((b) => !b.bytes).length - downloads.downloadedBlobs,
    manifests: plan.blobs.filter((b) => b.bytes).length,
    artifacts: plan.images.reduce((n, i) => n + (i.artifacts?.length ?? 0), 0),
    seconds: (Date.now() - startedAt) / 1000,
    warnings: plan.warnings,
  }
}
