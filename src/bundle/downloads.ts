/**
 * The blob downloads of one build: at most `concurrency` at once, each into the content-addressed store (verified
 * while it streams, see blob-store.ts). Blobs are wanted as the plan discovers them, looked up in the store at once and,
 * if missing, fetched in the order they were found; once the whole plan is known the waiting ones are put in tar order
 * (`reorder`), so the writer (whose copiers follow that order) rarely waits. A blob an earlier run left part of is
 * continued (see store/partial.ts). The writer asks `fillOf(digest)` for the file to follow: the BlobFill of a download
 * in progress, or undefined when the blob was already in the store.
 */
import type {Digest} from '../oci/digest.js'
import type {Reference} from '../oci/reference.js'
import type {ImageSource} from '../oci/source.js'
import type {BlobFill, BlobStore} from '../store/blob-store.js'
import {deferred, type Deferred} from '../util/async.js'

/**
 * Where blobs come from: an ImageSource's `blob`. `resume` asks for the rest of a blob an earlier run kept part of; a
 * source that honours it says so with `startsAt` on its stream (see store/partial.ts), one that does not simply sends
 * the whole blob.
 */
type BlobOrigin = Pick<ImageSource, 'blob'>

export interface WantedBlob {
  digest: Digest
  size: number
  mediaType?: string
  from: Reference
}

interface Entry {
  blob: WantedBlob
  /** Whether the blob was already in the store (settles once the store was asked). */
  cached: Deferred<boolean>
  /** The BlobFill once the download has opened its temp file; undefined when nothing was downloaded. */
  fill: Deferred<BlobFill | undefined>
}

export interface DownloadEvents {
  /** Bytes of `digest` that reached the store. */
  onBytes?: (digest: Digest, n: number) => void
  /** `digest` is verified and in the store. */
  onDone?: (digest: Digest) => void
  /** The download of `digest` continues `kept` bytes an earlier run left in the cache. */
  onResume?: (digest: Digest, kept: number) => void
}

export class Downloads {
  private readonly entries = new Map<Digest, Entry>()
  private readonly queue: Entry[] = []
  private running = 0
  /** Store lookups still under way (a blob is queued, or not, once its lookup answers). */
  private lookups = 0
  private idle = deferred<void>()
  private failure: unknown
  downloadedBlobs = 0
  /** Bytes fetched by this build (not counting kept bytes it continued). */
  downloadedBytes = 0
  /** Downloads that continued bytes an earlier run kept, and how many bytes that saved. */
  resumedBlobs = 0
  resumedBytes = 0

  constructor(
    private readonly store: BlobStore,
    private readonly source: BlobOrigin,
    private readonly concurrency: number,
    private readonly abort: AbortController,
    private readonly events: DownloadEvents = {},
  ) {
    this.idle.resolve()
  }

  /** The first error of any download (every later call fails with it). */
  get error(): unknown {
    return this.failure
  }

  /** Make sure `blob` ends up in the store; a digest already wanted is ignored. */
  want(blob: WantedBlob): void {
    if (this.entries.has(blob.digest)) return
    const entry: Entry = {blob, cached: deferred(), fill: deferred()}
    this.entries.set(blob.digest, entry)
    if (this.failure !== undefined) return this.settleFailed(entry)
    if (this.running === 0 && this.lookups === 0 && this.queue.length === 0) this.idle = deferred()
    this.lookups++
    this.store.has(blob).then(
      (hit) => {
        this.lookups--
        entry.cached.resolve(hit)
        if (hit) {
          entry.fill.resolve(undefined)
          this.events.onDone?.(blob.digest)
        } else {
          this.queue.push(entry)
        }
        this.pump()
      },
      (error: unknown) => {
        this.lookups--
        this.fail(error)
      },
    )
  }

  /** Waiting downloads in this order (tar order, once the plan is complete); running ones are not affected. */
  reorder(compare: (a: Digest, b: Digest) => number): void {
    this.queue.sort((a, b) => compare(a.blob.digest, b.blob.digest))
  }

  /** Whether the blob was in the store before this build (after its lookup). */
  wasCached(digest: Digest): Promise<boolean> {
    return this.entryOf(digest).cached.promise
  }

  /**
   * The file to follow for `digest`. The queue is not reordered: once the plan is complete it is in tar order, the
   * order in which the writer's copiers ask (several at once: moving each to the front would reverse them).
   */
  fillOf(digest: Digest): Promise<BlobFill | undefined> {
    return this.entryOf(digest).fill.promise
  }

  /** Resolves when nothing runs or waits any more; rejects with the first failure. */
  async drained(): Promise<void> {
    await this.idle.promise
    if (this.failure !== undefined) throw this.failure
  }

  /** Stop everything because of `error` (the first one wins). */
  fail(error: unknown): void {
    if (this.failure === undefined) this.failure = error
    this.abort.abort(this.failure)
    this.queue.length = 0 // nothing more starts; every waiter (queued or not) gets the failure
    for (const entry of this.entries.values()) this.settleFailed(entry)
    this.checkIdle()
  }

  private entryOf(digest: Digest): Entry {
    const entry = this.entries.get(digest)
    if (!entry) throw new Error(`internal: blob ${digest} was never wanted`)
    return entry
  }

  private settleFailed(entry: Entry): void {
    entry.cached.reject(this.failure)
    entry.fill.reject(this.failure)
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0 && this.failure === undefined) {
      const entry = this.queue.shift()!
      this.running++
      this.fetch(entry).finally(() => {
        this.running--
        this.pump()
      })
    }
    this.checkIdle()
  }

  private checkIdle(): void {
    if (this.running === 0 && this.lookups === 0 && (this.queue.length === 0 || this.failure !== undefined)) this.idle.resolve()
  }

  private async fetch(entry: Entry): Promise<void> {
    const {blob} = entry
    const signal = this.abort.signal
    try {
      const result = await this.store.ingest(blob, (resume) => this.source.blob(blob.from, blob, {signal, ...(resume ? {resume} : {})}), {
        signal,
        onBytes: (n) => {
          this.downloadedBytes += n
          this.events.onBytes?.(blob.digest, n)
        },
        onFill: (fill) => entry.fill.resolve(fill),
        onResume: (kept) => {
          this.resumedBlobs++
          this.resumedBytes += kept
          this.events.onResume?.(blob.digest, kept)
        },
      })
      entry.fill.resolve(undefined) // no effect when the fill was announced
      if (result.downloaded) this.downloadedBlobs++
      this.events.onDone?.(blob.digest)
    } catch (error) {
      this.fail(error)
    }
  }
}
