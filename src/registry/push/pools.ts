/**
 * The two pools writes run in, and the push's first failure. Blob uploads (long, bandwidth) take one of
 * `concurrency` upload slots, largest first; short exchanges (HEAD, mount, manifest PUT, and uploads of small blobs
 * such as configs, which cost round trips rather than bandwidth) have a pool of their own, so they proceed alongside
 * the big transfers instead of queueing behind them. Once the push has failed, queued work stops at once.
 */
import {Limiter} from '../../util/limiter.js'

/** Blobs below this size are uploaded in the short-exchange pool. */
const SMALL_BLOB_BYTES = 1024 * 1024

export class WritePools {
  /** The first error of the push; set, it stops everything still waiting for a permit. */
  failure: unknown

  constructor(
    readonly requests: Limiter,
    readonly uploads: Limiter,
  ) {}

  /** One short exchange, unless the push has already failed. */
  request<T>(priority: number, fn: () => Promise<T>): Promise<T> {
    return this.requests.run(async () => {
      if (this.failure) throw this.failure
      return fn()
    }, priority)
  }

  /** One blob upload, in the pool its size calls for, largest first, unless the push has already failed. */
  upload(size: number, fn: () => Promise<void>): Promise<void> {
    return (size < SMALL_BLOB_BYTES ? this.requests : this.uploads).run(() => {
      if (this.failure) throw this.failure
      return fn()
    }, size)
  }
}
