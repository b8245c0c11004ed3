/**
 * create's progress, image by image: each blob is credited to the first image that uses it. Downloads begin while the
 * plan is still being made, before the display can start (its totals need the whole plan), so what they fetch (or
 * continue from an earlier run) until then is kept per blob and shown as done when the display starts.
 */
import type {Digest} from '../oci/digest.js'
import type {Progress} from '../ui/progress.js'
import type {DownloadEvents} from './downloads.js'
import type {BundlePlan, PlannedBlob} from './plan.js'

interface Early {
  bytes: number
  /** Of those, bytes an earlier run had kept (shown as from the cache). */
  kept: number
  done: boolean
}

export class BuildProgress {
  private readonly owners = new Map<Digest, string>()
  private readonly pending = new Map<string, number>()
  private readonly early = new Map<Digest, Early>()
  private started = false

  constructor(private readonly progress: Progress | undefined) {}

  /** Credit `digest` to `user` unless an image before it uses it too. */
  own(digest: Digest, user: string): void {
    if (!this.owners.has(digest)) this.owners.set(digest, user)
  }

  /** What the downloads report, before and after the display started. */
  readonly events: DownloadEvents = {
    onBytes: (digest, n) => (this.started ? this.progress?.bytes(this.ownerOf(digest), n) : void (this.earlyOf(digest).bytes += n)),
    onResume: (digest, kept) => {
      if (this.started) return this.progress?.reused(this.ownerOf(digest), kept)
      const early = this.earlyOf(digest)
      early.bytes += kept
      early.kept += kept
    },
    onDone: (digest) => (this.started ? this.finish(digest) : void (this.earlyOf(digest).done = true)),
  }

  /** Start the display once the plan is complete: `fetched` are the blobs not in memory, `cached[i]` whether fetched[i] was in the store. */
  start(plan: BundlePlan, fetched: PlannedBlob[], cached: boolean[], bundleBytes: number): void {
    for (const blob of plan.blobs) this.own(blob.digest, blob.usedBy[0])
    const totals = new Map<string, {total: number; done: number; cached: number}>()
    for (const image of plan.images) totals.set(image.name, {total: 0, done: 0, cached: 0})
    fetched.forEach((blob, i) => {
      const owner = this.ownerOf(blob.digest)
      const t = totals.get(owner)!
      t.total += blob.size
      const early = this.early.get(blob.digest)
      if (cached[i]) {
        t.done += blob.size
        t.cached += blob.size
      } else {
        t.done += early?.bytes ?? 0
        t.cached += early?.kept ?? 0
        if (!early?.done) this.pending.set(owner, (this.pending.get(owner) ?? 0) + 1)
      }
    })
    for (const blob of plan.blobs.filter((b) => b.bytes)) {
      const t = totals.get(this.ownerOf(blob.digest))! // manifests: in memory, so done from the start
      t.total += blob.size
      t.done += blob.size
    }
    this.progress?.start(plan.images.map((i) => ({name: i.name, ...totals.get(i.name)!})), bundleBytes)
    this.started = true
  }

  private finish(digest: Digest): void {
    const owner = this.ownerOf(digest)
    const left = (this.pending.get(owner) ?? 1) - 1
    this.pending.set(owner, left)
    if (left === 0) this.progress?.itemDone(owner)
  }

  private ownerOf(digest: Digest): string {
    return this.owners.get(digest)!
  }

  private earlyOf(digest: Digest): Early {
    let early = this.early.get(digest)
    if (!early) this.early.set(digest, (early = {bytes: 0, kept: 0, done: false}))
    return early
  }
}
