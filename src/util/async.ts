/** Small concurrency helpers shared by the planner and the builder. */

/** `fn` over `items`, at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index], index)
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(limit, items.length))}, worker))
  return results
}

export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (error: unknown) => void
}

/** A promise settled from outside; an unawaited rejection is not reported as unhandled. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => undefined)
  return {promise, resolve, reject}
}

/**
 * "Something changed" for those who follow a thing that grows (a download, a region of the bundle): `wait()` resolves
 * at the next `wake()`; after `fail(error)` it rejects with that error, now and for every later wait.
 */
export class ChangeSignal {
  private waiters: Array<{resolve: () => void; reject: (error: unknown) => void}> = []
  private failure: {error: unknown} | undefined

  wait(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error)
    return new Promise((resolve, reject) => this.waiters.push({resolve, reject}))
  }

  wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.resolve()
  }

  /** The first failure wins; later calls do nothing. */
  fail(error: unknown): void {
    if (this.failure) return
    this.failure = {error}
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(error)
  }
}
