/**
 * `create` as a library: plan (references → platforms → blobs), fetch missing blobs into the content-addressed
 * store in parallel and in tar order, and write the bundle while the downloads run (the writer waits for each
 * blob in turn). A blob already verified in the store is never fetched again, so a rerun after a crash or a
 * second build of overlapping images downloads only what is missing.
 */
import {stat, statfs} from 'node:fs/promises'
import {dirname} from 'node:path'
import {Readable} from 'node:stream'
import {KubeferryError, isKubeferryError} from '../errors.js'
import type {Digest} from '../oci/digest.js'
import type {RegistryClient} from '../registry/client.js'
import type {BlobStore} from '../store/blob-store.js'
import type {Progress} from '../ui/progress.js'
import {planBundle, type BundlePlan, type ImageRequest, type ImageSource, type PlannedBlob} from './plan.js'
import {bundleEntries, buildMetadata, tarSize, writeBundle, type BundleRequest} from './writer.js'

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
}

export interface BuildSummary {
  output: string
  sha256: string
  size: number
  checksumFile: string
  installScript: string
  images: number
  platforms: string[]
  dockerPlatform: string
  uniqueBlobs: number
  blobBytes: number
  downloadedBlobs: number
  downloadedBytes: number
  cachedBlobs: number
  seconds: number
  warnings: string[]
}

/** The registry client as an ImageSource (raw bytes kept). */
export function registrySource(client: RegistryClient): ImageSource {
  return {
    getManifest: async (ref) => (await client.getManifest(ref)).raw,
    getManifestByDigest: async (ref, digest) => (await client.getManifestByDigest(ref, digest)).raw,
    openBlob: (ref, desc) => client.openBlob(ref, {digest: desc.digest, size: desc.size}),
  }
}

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (error: unknown) => void
}

function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => undefined)
  return {promise, resolve, reject}
}

async function sameDevice(a: string, b: string): Promise<boolean> {
  try {
    return (await stat(a)).dev === (await stat(b)).dev
  } catch {
    return false
  }
}

async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const info = await statfs(dir)
    return Number(info.bavail) * Number(info.bsize)
  } catch {
    return undefined
  }
}

async function checkSpace(plan: BundlePlan, missingBytes: number, bundleBytes: number, store: BlobStore, output: string): Promise<void> {
  const outDir = dirname(output)
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
  const shared = await sameDevice(store.root, outDir)
  const cacheFree = await freeBytes(store.root)
  const needCache = missingBytes + (shared ? bundleBytes : 0)
  if (cacheFree !== undefined && cacheFree < needCache) {
    throw new KubeferryError('NO_SPACE', `not enough space for ${plan.images.length} images: ${mb(needCache)} needed in ${store.root}${shared ? ` (cache + bundle)` : ''}, ${mb(cacheFree)} free`, {
      hint: 'free some space, or put the cache (--cache-dir) and the bundle (--output) on a larger disk',
    })
  }
  if (!shared) {
    const outFree = await freeBytes(outDir)
    if (outFree !== undefined && outFree < bundleBytes) {
      throw new KubeferryError('NO_SPACE', `not enough space in ${outDir} for the bundle: ${mb(bundleBytes)} needed, ${mb(outFree)} free`, {hint: 'free some space or write the bundle elsewhere with --output'})
    }
  }
}

export async function buildBundle(options: BuildOptions): Promise<BuildSummary> {
  const started = Date.now()
  const {store, source} = options
  const progress = options.progress
  const concurrency = options.concurrency ?? 8
  progress?.note(`resolving ${options.requests.length} image reference(s)…`)
  const plan = await planBundle(source, options.requests, {platforms: options.platforms, skipMissingPlatforms: options.skipMissingPlatforms, concurrency})

  // Manifests are small and already verified: keep them in the store too (a later build reads them from there).
  for (const blob of plan.blobs) if (blob.bytes) await store.putBytes(blob, blob.bytes)
  const missing: PlannedBlob[] = []
  const present = new Set<Digest>()
  for (const blob of plan.blobs) {
    if (blob.bytes || (await store.has(blob))) present.add(blob.digest)
    else missing.push(blob)
  }
  const metadata = buildMetadata(plan, options.request, options.sourceDateEpoch)
  const bundleBytes = tarSize(await bundleEntries(plan, metadata, options.sourceDateEpoch ?? 0))
  const missingBytes = missing.reduce((n, b) => n + b.size, 0)
  await checkSpace(plan, missingBytes, bundleBytes, store, options.output)

  // Progress: each blob is credited to the first image that uses it.
  const owner = (blob: PlannedBlob): string => blob.usedBy[0]
  const totals = new Map<string, {total: number; done: number; pending: number}>()
  for (const image of plan.images) totals.set(image.name, {total: 0, done: 0, pending: 0})
  for (const blob of plan.blobs) {
    const t = totals.get(owner(blob))!
    t.total += blob.size
    if (present.has(blob.digest)) t.done += blob.size
    else t.pending++
  }
  progress?.start(plan.images.map((i) => ({name: i.name, total: totals.get(i.name)!.total, done: totals.get(i.name)!.done})), bundleBytes)
  const finishBlob = (blob: PlannedBlob): void => {
    const t = totals.get(owner(blob))!
    t.pending--
    if (t.pending === 0) progress?.itemDone(owner(blob))
  }

  const abort = new AbortController()
  const onOuterAbort = (): void => abort.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', onOuterAbort)
  const ready = new Map<Digest, Deferred>()
  for (const blob of missing) ready.set(blob.digest, deferred())
  let downloadedBytes = 0
  let failure: unknown
  const fail = (error: unknown): void => {
    if (failure === undefined) failure = error
    abort.abort(error)
    for (const d of ready.values()) d.reject(failure)
  }

  // Downloads run in tar order so the writer, which follows that order, rarely waits.
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < missing.length && !abort.signal.aborted) {
      const blob = missing[next++]
      try {
        await store.ingest(blob, () => source.openBlob(blob.from, blob, {signal: abort.signal}), {
          signal: abort.signal,
          onBytes: (n) => {
            downloadedBytes += n
            progress?.bytes(owner(blob), n)
          },
        })
        ready.get(blob.digest)!.resolve()
        finishBlob(blob)
      } catch (error) {
        fail(error)
        return
      }
    }
  }
  const downloads = Promise.all(Array.from({length: Math.min(concurrency, Math.max(missing.length, 1))}, worker))

  let result
  try {
    result = await writeBundle({
      output: options.output,
      plan,
      request: options.request,
      sourceDateEpoch: options.sourceDateEpoch,
      fsync: options.fsync,
      signal: abort.signal,
      openBlob: async (blob) => {
        if (blob.bytes) return Readable.from([blob.bytes])
        const wait = ready.get(blob.digest)
        if (wait) await wait.promise
        const stream = store.open(blob)
        let counted = 0
        stream.on('data', (chunk: Buffer) => {
          counted += chunk.length
          progress?.bundleBytes(chunk.length)
        })
        stream.on('error', (error) => {
          // A cache file that no longer matches its digest: drop it so the next run fetches it again.
          if (isKubeferryError(error) && (error.code === 'DIGEST_MISMATCH' || error.code === 'SIZE_MISMATCH')) void store.remove(blob.digest)
          void counted
        })
        return stream
      },
    })
  } catch (error) {
    fail(error)
    await downloads
    throw failure ?? error
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
  await downloads
  for (const image of plan.images) progress?.itemDone(image.name)

  return {
    output: result.path,
    sha256: result.sha256,
    size: result.size,
    checksumFile: result.checksumFile,
    installScript: result.installScript,
    images: plan.images.length,
    platforms: plan.platforms,
    dockerPlatform: plan.dockerPlatform,
    uniqueBlobs: plan.blobs.length,
    blobBytes: plan.blobs.reduce((n, b) => n + b.size, 0),
    downloadedBlobs: missing.length,
    downloadedBytes,
    cachedBlobs: plan.blobs.length - missing.length,
    seconds: (Date.now() - started) / 1000,
    warnings: plan.warnings,
  }
}
