/**
 * `push`: a bundle's images into a registry under new names, digests unchanged.
 *
 * Order and checks, per destination repository: HEAD the tag first — when it already points at the bundle's digest
 * the image (and everything under it, which the registry validated when the tag was written) is skipped, so a rerun
 * on a complete registry costs one HEAD per name. Otherwise blobs go first (HEAD, else a cross-repository mount from
 * where this run already put them, else a streamed upload verified as it reads the bundle), then platform manifests
 * by digest, then the index or manifest under its tag: children always before parents.
 *
 * Sparse indexes (platforms listed whose content is not in the bundle): distribution refuses them
 * (MANIFEST_BLOB_UNKNOWN). `platformPolicy`:
 *  - `auto` (default): push the upstream index as is (digest kept); if the registry refuses it, push the filtered
 *    index instead and say so — the tag then has a new digest, every platform manifest keeps its upstream digest;
 *  - `sparse`: upstream index only, fail where refused;
 *  - `filtered`: always the filtered index (only present platforms; new index digest, same on every run).
 * A tag that already points at another digest is refused before anything is pushed, unless `overwrite`.
 */
import type {Readable} from 'node:stream'
import {Transform} from 'node:stream'
import {describeError, KubeferryError} from '../errors.js'
import type {Digest} from '../oci/digest.js'
import type {RawManifest} from '../oci/types.js'
import type {BundleReader} from '../bundle/reader.js'
import {readSourceImages, presentPlatforms, type ManifestNode, type SourceImage} from './push-source.js'
import {formatDestination, planNames, type NameRules, type PushDestination} from './rename.js'
import type {Reference} from './reference.js'

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
  /** Parallel registry operations (default 8). */
  concurrency?: number
  overwrite?: boolean
  dryRun?: boolean
  onEvent?: (event: PushEvent) => void
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
  durationMs: number
}

export type PushEvent =
  | {type: 'planned'; images: number; targets: number; toPush: number}
  | {type: 'target-done'; target: TargetResult; source: string}
  | {type: 'blob'; digest: Digest; repository: string; action: 'uploaded' | 'mounted' | 'present'; size: number}
  | {type: 'bytes'; uploaded: number}
  | {type: 'filtered'; reference: string; upstreamDigest: Digest; digest: Digest; reason: string}

/** A bounded pool of permits; only leaf operations (single HTTP exchanges or one upload) take one. */
class Limiter {
  private active = 0
  private readonly queue: Array<() => void> = []
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.queue.push(resolve))
    this.active++
    try {
      return await fn()
    } finally {
      this.active--
      this.queue.shift()?.()
    }
  }
}

interface Target {
  image: SourceImage
  repository: string
  alias: boolean
  ref: Reference
  reference: string
  acceptable: Set<string>
  existing?: Digest
  status?: TargetStatus
}

function isRefusedIndex(error: unknown): boolean {
  return error instanceof KubeferryError && /MANIFEST_BLOB_UNKNOWN|MANIFEST_UNKNOWN|MANIFEST_INVALID|BLOB_UNKNOWN|HTTP 400/.test(error.message)
}

/** Push every image of the bundle to the destination; see the file comment for order and policies. */
export async function pushBundle(reader: BundleReader, registry: PushRegistry, options: PushOptions): Promise<PushReport> {
  const started = Date.now()
  const policy = options.platformPolicy ?? 'auto'
  const limit = new Limiter(Math.max(1, options.concurrency ?? 8))
  const emit = options.onEvent ?? (() => {})
  const dest = options.destination
  const images = await readSourceImages(reader)

  const named = planNames(images.map((i) => ({registry: i.ref.registry, repository: i.ref.repository, tag: i.ref.tag, name: i.name, digest: i.root.raw.digest})), options.rules)
  const targets: Target[] = []
  named.forEach((n, i) => {
    const image = images[i]
    n.repositories.forEach((repository, j) => {
      const ref: Reference = {registry: dest.registry, repository, ...(image.ref.tag ? {tag: image.ref.tag} : {digest: image.root.raw.digest})}
      const acceptable = new Set<string>([image.root.raw.digest])
      if (image.root.filtered && policy !== 'sparse') acceptable.add(image.root.filtered.digest)
      targets.push({image, repository, alias: j > 0, ref, reference: `${dest.registry}/${repository}${image.ref.tag ? `:${image.ref.tag}` : `@${image.root.raw.digest}`}`, acceptable})
    })
  })

  // 1. What is there already (one HEAD per destination name).
  await Promise.all(
    targets.map((t) =>
      limit.run(async () => {
        const head = await registry.headManifest(t.ref)
        if (!head) return
        t.existing = head.digest
        if (t.acceptable.has(head.digest)) t.status = 'present'
        else t.status = options.overwrite ? (options.dryRun ? 'would-overwrite' : undefined) : 'conflict'
      }),
    ),
  )
  const conflicts = targets.filter((t) => t.status === 'conflict')
  const toPush = targets.filter((t) => t.status !== 'present' && t.status !== 'conflict')
  emit({type: 'planned', images: images.length, targets: targets.length, toPush: toPush.length})
  if (conflicts.length > 0 && !options.dryRun) {
    const first = conflicts[0]
    throw new KubeferryError('CONFLICT', `${first.reference} already exists with digest ${first.existing}, the bundle has ${first.image.root.raw.digest}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more name(s))` : ''}; nothing was pushed`, {
      hint: 'push under another prefix, or replace those tags with --overwrite',
    })
  }

  const report: PushReport = {
    destination: formatDestination(dest),
    dryRun: options.dryRun ?? false,
    platformPolicy: policy,
    images: [],
    blobs: {uploaded: 0, mounted: 0, present: 0, bytesUploaded: 0},
    manifests: {pushed: 0, present: 0},
    durationMs: 0,
  }
  const results = new Map<Target, TargetResult>()
  const result = (t: Target, status: TargetStatus, digest: Digest, filtered: boolean): TargetResult => {
    const r: TargetResult = {
      reference: t.reference,
      repository: t.repository,
      ...(t.image.ref.tag ? {tag: t.image.ref.tag} : {}),
      status,
      digest,
      upstreamDigest: t.image.root.raw.digest,
      filtered,
      alias: t.alias,
      ...(t.existing && !t.acceptable.has(t.existing) ? {previousDigest: t.existing} : {}),
    }
    results.set(t, r)
    return r
  }
  for (const t of targets) if (t.status === 'present') result(t, 'present', t.existing as Digest, t.existing !== t.image.root.raw.digest)

  if (options.dryRun) {
    const blobsToUpload = new Map<Digest, number>()
    await Promise.all(
      toPush.concat(conflicts).map(async (t) => {
        const filtered = policy === 'filtered' && t.image.root.filtered !== undefined
        result(t, t.status === 'conflict' ? 'conflict' : t.status ?? 'would-push', filtered ? t.image.root.filtered!.digest : t.image.root.raw.digest, filtered)
        if (t.status === 'conflict') return
        await Promise.all(
          leafBlobs(t.image.root).map((b) =>
            limit.run(async () => {
              if (blobsToUpload.has(b.digest)) return
              if (!(await registry.blobExists({registry: dest.registry, repository: t.repository}, b.digest))) blobsToUpload.set(b.digest, b.size)
            }),
          ),
        )
      }),
    )
    report.blobs.toUpload = blobsToUpload.size
    report.blobs.bytesToUpload = [...blobsToUpload.values()].reduce((a, b) => a + b, 0)
  } else {
    await pushTargets(toPush)
  }

  report.images = images.map((image) => ({
    source: image.name,
    platforms: presentPlatforms(image.root),
    sparse: image.sparse,
    targets: targets.filter((t) => t.image === image).map((t) => results.get(t)).filter((r): r is TargetResult => r !== undefined),
  }))
  report.durationMs = Date.now() - started
  return report

  async function pushTargets(list: Target[]): Promise<void> {
    // Where each blob is known to be in this registry (for cross-repository mounts), and in-flight claims.
    const homes = new Map<Digest, Promise<string | undefined>>()
    const done = new Map<string, Promise<void>>()
    let failure: unknown
    let uploadedBytes = 0

    const ensureBlob = (repository: string, blob: {digest: Digest; size: number}): Promise<void> => {
      const key = `${repository}@${blob.digest}`
      let p = done.get(key)
      if (!p) {
        p = placeBlob(repository, blob)
        done.set(key, p)
      }
      return p
    }

    const placeBlob = async (repository: string, blob: {digest: Digest; size: number}): Promise<void> => {
      const repo: Reference = {registry: dest.registry, repository}
      const claimed = homes.get(blob.digest)
      if (claimed) {
        const home = await claimed.catch(() => undefined)
        if (home !== undefined && home !== repository) {
          if (failure) throw failure
          if (await limit.run(() => registry.mountBlob(repo, blob.digest, home))) {
            report.blobs.mounted++
            emit({type: 'blob', digest: blob.digest, repository, action: 'mounted', size: blob.size})
            return
          }
        } else if (home === repository) {
          return
        }
      }
      const claim = (async () => {
        if (failure) throw failure
        if (await limit.run(() => registry.blobExists(repo, blob.digest))) {
          report.blobs.present++
          emit({type: 'blob', digest: blob.digest, repository, action: 'present', size: blob.size})
          return repository
        }
        if (failure) throw failure
        let attemptBytes = 0
        await limit.run(() =>
          registry.uploadBlob(repo, blob, async () => {
            // A retry reopens the stream: take back what the failed try counted.
            uploadedBytes -= attemptBytes
            attemptBytes = 0
            const source = (await reader.openBlob(blob)) as Readable
            const counter = new Transform({
              transform(chunk: Buffer, _enc, cb) {
                attemptBytes += chunk.length
                uploadedBytes += chunk.length
                emit({type: 'bytes', uploaded: uploadedBytes})
                cb(null, chunk)
              },
            })
            source.on('error', (e) => counter.destroy(e))
            return source.pipe(counter)
          }),
        )
        report.blobs.uploaded++
        report.blobs.bytesUploaded += blob.size
        emit({type: 'blob', digest: blob.digest, repository, action: 'uploaded', size: blob.size})
        return repository
      })()
      if (!claimed) homes.set(blob.digest, claim)
      await claim
    }

    /** Push a manifest subtree into `repository`; `tag` only for the root. Returns the digest written. */
    const pushNode = async (t: Target, node: ManifestNode, root: boolean): Promise<{digest: Digest; filtered: boolean}> => {
      const repo: Reference = {registry: dest.registry, repository: t.repository}
      if (!root) {
        const head = await limit.run(() => registry.headManifest({...repo, digest: node.raw.digest}))
        if (head) {
          report.manifests.present++
          return {digest: node.raw.digest, filtered: false}
        }
      }
      if (node.kind === 'manifest') await Promise.all(node.blobs.map((b) => ensureBlob(t.repository, b)))
      else await Promise.all(node.children.map((c) => pushNode(t, c, false)))
      if (failure) throw failure
      const where = root ? (t.image.ref.tag ?? node.raw.digest) : node.raw.digest
      const put = async (raw: RawManifest) => {
        await limit.run(() => registry.putManifest(repo, root && t.image.ref.tag ? where : raw.digest, raw))
        report.manifests.pushed++
        return raw.digest
      }
      if (!root || !node.filtered || policy === 'sparse') return {digest: await put(node.raw), filtered: false}
      if (policy === 'filtered') return {digest: await put(node.filtered), filtered: true}
      try {
        return {digest: await put(node.raw), filtered: false}
      } catch (error) {
        if (!isRefusedIndex(error)) throw error
        const digest = await put(node.filtered)
        const code = /\b([A-Z_]{6,}):/.exec((error as Error).message)?.[1] ?? 'refused'
        emit({type: 'filtered', reference: t.reference, upstreamDigest: node.raw.digest, digest, reason: code})
        return {digest, filtered: true}
      }
    }

    let completed = 0
    await Promise.all(
      list.map(async (t) => {
        try {
          const {digest, filtered} = await pushNode(t, t.image.root, true)
          const r = result(t, t.existing && !t.acceptable.has(t.existing) ? 'overwritten' : 'pushed', digest, filtered)
          completed++
          emit({type: 'target-done', target: r, source: t.image.name})
        } catch (error) {
          failure ??= error
        }
      }),
    )
    if (failure) {
      const e = failure instanceof KubeferryError ? failure : new KubeferryError('INTERNAL', describeError(failure))
      throw new KubeferryError(e.code, `push to ${formatDestination(dest)} is incomplete (${completed} of ${list.length} name(s) pushed): ${e.message}`, {
        hint: `${e.hint ? `${e.hint}; then ` : ''}rerun the same command: what is already in the registry is skipped`,
        cause: failure,
        exitCode: e.exitCode,
      })
    }
  }
}

function leafBlobs(node: ManifestNode): Array<{digest: Digest; size: number}> {
  return node.kind === 'manifest' ? node.blobs : node.children.flatMap(leafBlobs)
}
