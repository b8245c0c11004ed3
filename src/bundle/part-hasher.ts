/**
 * Each part's sha256 for create --split, taken on a worker thread. The in-order hasher (tar-out.ts) already spends a
 * core's time on the whole bundle's SHA-256 (~0.9 GB/s here); a second hash of the same bytes on the same thread made
 * a split create a tenth slower. The bytes are copied once (the copier's buffers go back to their pool) and handed
 * over without a further copy; the worker hashes while the main thread goes on. `room()` lets the hasher wait when
 * the worker falls more than WINDOW bytes behind, so memory stays bounded.
 */
import {Worker} from 'node:worker_threads'
import {KubeferryError} from '../oci/errors.js'

const WORKER = `
const {parentPort} = require('node:worker_threads')
const {createHash} = require('node:crypto')
const hashes = []
parentPort.on('message', (m) => {
  if (m.end) {
    parentPort.postMessage({digests: hashes.map((h) => h.digest('hex'))})
    return
  }
  if (!hashes[m.index]) hashes[m.index] = createHash('sha256')
  hashes[m.index].update(new Uint8Array(m.data))
  parentPort.postMessage({done: m.data.byteLength})
})
`

/** Bytes handed to the worker and not hashed yet, beyond which `room()` waits. */
const WINDOW = 8 * 1024 * 1024

export class PartHasher {
  private readonly worker = new Worker(WORKER, {eval: true})
  private behind = 0
  private waiters: Array<() => void> = []
  private failure: unknown
  private result?: (digests: string[]) => void

  constructor() {
    this.worker.on('message', (m: {done?: number; digests?: string[]}) => {
      if (m.digests) this.result?.(m.digests)
      else {
        this.behind -= m.done ?? 0
        if (this.behind <= WINDOW) this.wake()
      }
    })
    this.worker.on('error', (error) => {
      this.failure ??= error
      this.wake()
    })
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }

  /** Hash `data` as the next bytes of part `index` (copied: the caller may reuse it at once). */
  update(index: number, data: Buffer): void {
    const copy = Buffer.allocUnsafeSlow(data.length) // its own ArrayBuffer (not the pool's), not zeroed: one pass
    data.copy(copy)
    this.behind += data.length
    this.worker.postMessage({index, data: copy.buffer}, [copy.buffer])
  }

  /** Undefined when the worker keeps up; else resolves once it is back within the window. */
  room(): Promise<void> | undefined {
    if (this.behind <= WINDOW && this.failure === undefined) return undefined
    return (async () => {
      while (this.behind > WINDOW && this.failure === undefined) await new Promise<void>((resolve) => this.waiters.push(resolve))
      if (this.failure !== undefined) throw this.failure
    })()
  }

  /** Every part's sha256 (hex), in order, once all bytes were given; stops the worker. */
  async digests(): Promise<string[]> {
    if (this.failure !== undefined) throw this.failure
    const done = new Promise<string[]>((resolve, reject) => {
      this.result = resolve
      this.worker.once('error', reject)
      this.worker.once('exit', () => reject(new KubeferryError('INTERNAL', 'the part hasher stopped before giving its digests')))
    })
    this.worker.postMessage({end: true})
    try {
      return await done
    } finally {
      await this.stop()
    }
  }

  async stop(): Promise<void> {
    await this.worker.terminate()
  }
}
