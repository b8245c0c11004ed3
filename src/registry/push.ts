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
 *
 * Scheduling: blob uploads take one of `concurrency` upload slots, largest blob first (the long transfers start at
 * once); the short exchanges (HEAD checks, mounts, manifest PUTs, and uploads of small blobs such as configs) run
 * in a pool of their own, so they proceed alongside the big transfers instead of queueing behind them. A manifest
 * is PUT as soon as its own children are in place.
 */
import type {Readable} from 'node:stream'
import {describeError, KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {RawManifest} from '../oci/types.js'
import type {BundleReader} from '../bundle/reader.js'
import {listSourceImages, presentPlatforms, readSourceImage, type ManifestNode, type SourceImage} from './push-source.js'
import {formatDestination, planNames, type NameRules, type PushDestination} from './rename.js'
import type {Reference} from '../oci/reference.js'

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

/** Read size for blobs streamed out of the bundle: fewer reads, chunks and socket writes than the 64 KiB default. */
const UPLOAD_READ_BYTES = 1024 * 1024
/** Blobs below this size are uploaded in the short-exchange pool. */
const SMALL_BLOB_BYTES = 1024 * 1024
/** Priority of manifest exchanges in the request pool: ahead of blob checks, they gate or complete whole images. */
const MANIFEST_PRIORITY = Number.MAX_SAFE_INTEGER

/**
 * A bounded pool of permits; only leaf operations (single HTTP exchanges or one upload) take one. Waiting work
 * starts highest priority first, in arrival order among equals; a finishing task hands its permit straight on.
 */
export class Limiter {
  private active = 0
  private seq = 0
  private readonly queue: Array<{priority: number; seq: number; start: () => void}> = []
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>, priority = 0): Promise<T> {
    if (this.active < this.max) this.active++
    else await new Promise<void>((start) => this.enqueue({priority, seq: this.seq++, start}))
    try {
      return await fn()
    } finally {
      const next = this.queue.shift()
      if (next) next.start()
      else this.active--
    }
  }

  private enqueue(item: {priority: number; seq: number; start: () => void}): void {
    // Binary search for the first waiting item of lower priority (equal priorities keep arrival order).
    let lo = 0
    let hi = this.queue.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.queue[mid].priority >= item.priority) lo = mid + 1
      else hi = mid
    }
    this.queue.splice(lo, 0, item)
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
  const concurrency = Math.max(1, options.concurrency ?? 8)
  // Blob uploads (long, bandwidth) and short exchanges (HEAD, mount, manifest PUT) have pools of their own.
  const uploads = new Limiter(concurrency)
  const requests = new Limiter(concurrency)
  const emit = options.onEvent ?? (() => {})
  const dest = options.destination
  // index.json's names are enough to ask the registry what is there; the manifests are read meanwhile.
  const gate = options.gate ?? Promise.resolve()
  gate.catch(() => {}) // handled below; must not count as unhandled while other work is awaited
  let named: Awaited<ReturnType<typeof listSourceImages>>
  try {
    named = await listSourceImages(reader)
  } catch (error) {
    await gate // the gate's own error, if it has one, says more
    throw error
  }
  const names = planNames(named.map((i) => ({registry: i.ref.registry, repository: i.ref.repository, tag: i.ref.tag, name: i.name, digest: i.desc.digest})), options.rules)
  const places = names.flatMap((n, i) =>
    n.repositories.map((repository, j) => {
      const image = named[i]
      const ref: Reference = {registry: dest.registry, repository, ...(image.ref.tag ? {tag: image.ref.tag} : {digest: image.desc.digest})}
      return {index: i, repository, alias: j > 0, ref, reference: `${dest.registry}/${repository}${image.ref.tag ? `:${image.ref.tag}` : `@${image.desc.digest}`}`}
    }),
  )
  // 1. What is there already (one HEAD per destination name, all at once), while the bundle's manifests are read
  //    (and the gate, if any, runs): nothing is written before all three are done.
  const [checked, read, asked] = await Promise.allSettled([
    gate,
    Promise.all(named.map((image) => readSourceImage(reader, image))),
    Promise.all(places.map((place) => requests.run(() => registry.headManifest(place.ref)))),
  ])
  for (const settled of [checked, read, asked]) if (settled.status === 'rejected') throw settled.reason
  const images = (read as PromiseFulfilledResult<SourceImage[]>).value
  const heads = (asked as PromiseFulfilledResult<Awaited<ReturnType<PushRegistry['headManifest']>>[]>).value
  const targets: Target[] = places.map((place, k) => {
    const image = images[place.index]
    const acceptable = new Set<string>([image.root.raw.digest])
    if (image.root.filtered && policy !== 'sparse') acceptable.add(image.root.filtered.digest)
    const t: Target = {image, repository: place.repository, alias: place.alias, ref: place.ref, reference: place.reference, acceptable}
    const head = heads[k]
    if (head) {
      t.existing = head.digest
      if (acceptable.has(head.digest)) t.status = 'present'
      else t.status = options.overwrite ? (options.dryRun ? 'would-overwrite' : undefined) : 'conflict'
    }
    return t
  })
  const conflicts = targets.filter((t) => t.status === 'conflict')
  const toPush = targets.filter((t) => t.status !== 'present' && t.status !== 'conflict')
  emit({type: 'planned', images: images.length, targets: targets.length, toPush: toPush.length, ...plannedImages(toPush)})
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
            requests.run(async () => {
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
    const progress = blobProgress(list, emit)
    const remaining = new Map<SourceImage, number>()
    for (const t of list) remaining.set(t.image, (remaining.get(t.image) ?? 0) + 1)

    const ensureBlob = (repository: string, blob: {digest: Digest; size: number}): Promise<void> => {
      const key = `${repository}@${blob.digest}`
      let p = done.get(key)
      if (!p) {
        p = placeBlob(repository, blob)
        done.set(key, p)
      }
      return p
    }

    /** Run one short exchange unless the push has already failed (queued work then stops at once). */
    const request = <T>(priority: number, fn: () => Promise<T>): Promise<T> =>
      requests.run(async () => {
        if (failure) throw failure
        return fn()
      }, priority)

    const placeBlob = async (repository: string, blob: {digest: Digest; size: number}): Promise<void> => {
      const repo: Reference = {registry: dest.registry, repository}
      const claimed = homes.get(blob.digest)
      if (claimed) {
        const home = await claimed.catch(() => undefined)
        if (home !== undefined && home !== repository) {
          if (await request(blob.size, () => registry.mountBlob(repo, blob.digest, home))) {
            report.blobs.mounted++
            emit({type: 'blob', digest: blob.digest, repository, action: 'mounted', size: blob.size})
            progress.placed(blob)
            return
          }
        } else if (home === repository) {
          return
        }
      }
      const claim = (async () => {
        if (await request(blob.size, () => registry.blobExists(repo, blob.digest))) {
          report.blobs.present++
          emit({type: 'blob', digest: blob.digest, repository, action: 'present', size: blob.size})
          progress.placed(blob)
          return repository
        }
        // Small blobs (configs) cost round trips, not bandwidth: they go with the short exchanges, alongside the
        // big uploads, instead of queueing behind them and leaving a latency-bound tail.
        await (blob.size < SMALL_BLOB_BYTES ? requests : uploads).run(() => {
          if (failure) throw failure
          return upload(repo, blob)
        }, blob.size)
        report.blobs.uploaded++
        report.blobs.bytesUploaded += blob.size
        emit({type: 'blob', digest: blob.digest, repository, action: 'uploaded', size: blob.size})
        progress.placed(blob)
        return repository
      })()
      if (!claimed) homes.set(blob.digest, claim)
      await claim
    }

    const upload = (repo: Reference, blob: {digest: Digest; size: number}): Promise<void> => {
      return registry.uploadBlob(repo, blob, async () => {
        // Each try (a retry reopens the stream) counts from zero again.
        let streamed = 0
        progress.streamed(blob, 0)
        const onBytes = (n: number): void => {
          streamed += n
          progress.streamed(blob, streamed)
        }
        // Verified (digest and size) as it streams: a corrupt blob fails its upload and is never committed.
        return (await reader.openBlob(blob, {highWaterMark: UPLOAD_READ_BYTES, onBytes})) as Readable
      })
    }

    /** Push a manifest subtree into `repository`; `tag` only for the root. Returns the digest written. */
    const pushNode = async (t: Target, node: ManifestNode, root: boolean): Promise<{digest: Digest; filtered: boolean}> => {
      const repo: Reference = {registry: dest.registry, repository: t.repository}
      if (!root) {
        const head = await request(MANIFEST_PRIORITY, () => registry.headManifest({...repo, digest: node.raw.digest}))
        if (head) {
          report.manifests.present++
          return {digest: node.raw.digest, filtered: false}
        }
      }
      if (node.kind === 'manifest') await Promise.all(node.blobs.map((b) => ensureBlob(t.repository, b)))
      else await Promise.all(node.children.map((c) => pushNode(t, c, false)))
      const where = root ? (t.image.ref.tag ?? node.raw.digest) : node.raw.digest
      const put = async (raw: RawManifest) => {
        await request(MANIFEST_PRIORITY, () => registry.putManifest(repo, root && t.image.ref.tag ? where : raw.digest, raw))
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
          const left = (remaining.get(t.image) ?? 1) - 1
          remaining.set(t.image, left)
          if (left === 0) {
            const done = list.filter((x) => x.image === t.image).map((x) => results.get(x)).filter((x): x is TargetResult => x !== undefined)
            emit({type: 'image-done', source: t.image.name, targets: done})
          }
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

/** The images with names to push, the bytes of each one's blobs (each once), and of all of them (each blob once). */
function plannedImages(list: Target[]): {pushing: PlannedImage[]; bytes: number} {
  const byImage = new Map<SourceImage, PlannedImage>()
  const all = new Map<Digest, number>()
  for (const t of list) {
    let planned = byImage.get(t.image)
    if (!planned) {
      const own = new Map(leafBlobs(t.image.root).map((b) => [b.digest, b.size]))
      for (const [digest, size] of own) all.set(digest, size)
      planned = {source: t.image.name, bytes: [...own.values()].reduce((a, b) => a + b, 0), references: []}
      byImage.set(t.image, planned)
    }
    planned.references.push(t.reference)
  }
  return {pushing: [...byImage.values()], bytes: [...all.values()].reduce((a, b) => a + b, 0)}
}

/**
 * Progress per image and overall: how far each blob is (bytes streamed by the current try, or all of it once it is
 * in place), turned into `bytes` events for every image that uses it. A blob in place stays counted.
 */
function blobProgress(list: Target[], emit: (event: PushEvent) => void): {streamed(blob: {digest: Digest; size: number}, bytes: number): void; placed(blob: {digest: Digest; size: number}): void} {
  const users = new Map<Digest, string[]>()
  for (const image of new Set(list.map((t) => t.image))) {
    for (const digest of new Set(leafBlobs(image.root).map((b) => b.digest))) {
      const names = users.get(digest) ?? []
      names.push(image.name)
      users.set(digest, names)
    }
  }
  const level = new Map<Digest, number>()
  const complete = new Set<Digest>()
  const advance = (digest: Digest, value: number): void => {
    const delta = value - (level.get(digest) ?? 0)
    if (delta === 0) return
    level.set(digest, value)
    emit({type: 'bytes', bytes: delta})
    for (const source of users.get(digest) ?? []) emit({type: 'bytes', source, bytes: delta})
  }
  return {
    streamed(blob, bytes) {
      if (!complete.has(blob.digest)) advance(blob.digest, Math.min(bytes, blob.size))
    },
    placed(blob) {
      if (complete.has(blob.digest)) return
      complete.add(blob.digest)
      advance(blob.digest, blob.size)
    },
  }
}

function leafBlobs(node: ManifestNode): Array<{digest: Digest; size: number}> {
  return node.kind === 'manifest' ? node.blobs : node.children.flatMap(leafBlobs)
}
