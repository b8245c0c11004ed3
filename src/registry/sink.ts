/**
 * A registry as an ImageSink: images from any ImageSource (a bundle, another registry, the blob cache) written under
 * their destination names by push's named steps (push/): blobs (HEAD, cross-repository mount, upload streamed from
 * the source), child manifests, then the root under its tag with the platform policy for sparse indexes. What is
 * shared across images lives here, so that writing many images costs what pushing them together costs: the blob
 * placements (each blob checked or uploaded once per repository, mounted from where it already went), the two pools
 * (uploads, short exchanges) and their first failure, the counters and the progress.
 *
 * `push` checks every name of a bundle before writing anything and hands each image its checked names (`targets`);
 * an image written without them is planned and checked here on its own (its names by the renaming rules, one HEAD
 * each, a conflict refused unless `overwrite`), which is what a registry → registry copy does.
 */
import {KubeferryError} from '../oci/errors.js'
import type {ImageSink, ImageSource, SourcedImage} from '../oci/source.js'
import {sourceImageOf, type SourceImage} from './push-source.js'
import {BlobPlacer} from './push/blobs.js'
import {classifyTargets, refuseConflicts, type Target} from './push/check.js'
import {Limiter} from '../util/limiter.js'
import {pushImage, type ManifestContext} from './push/manifests.js'
import {planPlaces} from './push/plan.js'
import {WritePools} from './push/pools.js'
import {blobProgress, type BlobProgress} from './push/progress.js'
import {emptyReport, incompleteError, Results} from './push/report.js'
import type {Emit, PlatformPolicy, PushCounts, PushRegistry, TargetResult} from './push/types.js'
import {nameRulesFrom, type NameRules, type PushDestination} from './rename.js'

export interface RegistrySinkOptions {
  registry: PushRegistry
  destination: PushDestination
  /** Renaming rules for images written without checked targets (default: push's, with no flags: names kept under the destination's prefix). */
  rules?: NameRules
  policy?: PlatformPolicy
  /** Parallel blob uploads (default 8), and as many short exchanges alongside; ignored when `pools` is given. */
  concurrency?: number
  pools?: WritePools
  overwrite?: boolean
  /** The report's counters to add to (default: the sink's own). */
  counts?: PushCounts
  results?: Results
  onEvent?: Emit
}

export interface WriteOptions {
  signal?: AbortSignal
  /** The image's destination names, already checked against the registry (push checks a whole bundle first). */
  targets?: Target[]
}

export class RegistrySink implements ImageSink<TargetResult[]> {
  readonly pools: WritePools
  readonly counts: PushCounts
  readonly results: Results
  /** Destination names written so far (pushed or overwritten). */
  completed = 0
  private readonly emit: Emit
  private readonly progress: BlobProgress
  private readonly blobs: BlobPlacer
  private readonly manifests: ManifestContext

  constructor(private readonly options: RegistrySinkOptions) {
    const concurrency = Math.max(1, options.concurrency ?? 8)
    this.pools = options.pools ?? new WritePools(new Limiter(concurrency), new Limiter(concurrency))
    this.counts = options.counts ?? emptyReport(options.destination, options.policy ?? 'auto', false)
    this.results = options.results ?? new Results()
    this.emit = options.onEvent ?? (() => {})
    this.progress = blobProgress(this.emit)
    const {registry, destination} = options
    const common = {registry, registryHost: destination.registry, pools: this.pools, counts: this.counts, emit: this.emit}
    this.blobs = new BlobPlacer({...common, progress: this.progress})
    this.manifests = {...common, policy: options.policy ?? 'auto', blobs: this.blobs}
  }

  /** Count these images' blobs in the progress now (push announces every image before the first byte). */
  announce(images: Iterable<SourceImage>): void {
    this.progress.add(images)
  }

  /**
   * Write one image under each of its destination names; resolves to every name's result. The first failure of any
   * name is thrown once the image's other names have settled (and stops work still queued in the shared pools).
   */
  async write(image: SourcedImage, source: ImageSource, options: WriteOptions = {}): Promise<TargetResult[]> {
    const pushed = 'root' in image ? (image as SourceImage) : sourceImageOf(image)
    const targets = options.targets ?? (await this.check(pushed))
    const toPush = targets.filter((t) => t.status !== 'present' && t.status !== 'conflict')
    this.progress.add([pushed])
    const from = {source, ref: pushed.ref, ...(options.signal ? {signal: options.signal} : {})}
    let remaining = toPush.length
    let failure: unknown
    await Promise.all(
      toPush.map(async (t) => {
        try {
          const {digest, filtered} = await pushImage(this.manifests, t, from)
          const r = this.results.record(t, t.existing && !t.acceptable.has(t.existing) ? 'overwritten' : 'pushed', digest, filtered)
          this.completed++
          this.emit({type: 'target-done', target: r, source: pushed.name})
          if (--remaining === 0) this.emit({type: 'image-done', source: pushed.name, targets: this.results.of(toPush)})
        } catch (error) {
          failure ??= error
          this.pools.failure ??= error
        }
      }),
    )
    if (failure !== undefined) throw failure
    return this.results.of(targets)
  }

  /** The first failure of any write, as push reports it: how many of `total` names were written, and why it stopped. */
  failed(total: number): KubeferryError | undefined {
    return this.pools.failure === undefined ? undefined : incompleteError(this.options.destination, this.completed, total, this.pools.failure)
  }

  /** An image written on its own: its names by the rules, one HEAD each; present ones recorded, a conflict refused. */
  private async check(image: SourceImage): Promise<Target[]> {
    const {registry, destination} = this.options
    const named = [{name: image.name, ref: image.ref, ...(image.role ? {role: image.role} : {}), desc: image.tree.descriptor}]
    const places = planPlaces(named, this.options.rules ?? nameRulesFrom(destination, {}), destination)
    const heads = await Promise.all(places.map((place) => this.pools.request(0, () => registry.headManifest(place.ref))))
    const targets = classifyTargets(places, {images: [image], heads}, this.options.policy ?? 'auto', {overwrite: this.options.overwrite})
    refuseConflicts(targets.filter((t) => t.status === 'conflict'))
    for (const t of targets) if (t.status === 'present') this.results.record(t, 'present', t.existing!, t.existing !== image.root.raw.digest)
    return targets
  }
}
