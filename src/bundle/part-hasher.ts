/**
 * Each part's sha256 for create --split, taken on a worker thread. The in-order hasher (tar-out.ts) already spends a
 * core's time on the whole bundle's SHA-256 (~0.9 GB/s here); a second hash of the same bytes on the same thread made
 * a split create a tenth slower. The bytes are copied once into buffers of a small pool of our own (the copier's
 * go back to theirs at once) and handed over without a further copy; the worker hashes while the main thread goes on
 * and hands each buffer back. `room()` lets the hasher wait when the worker falls more than WINDOW bytes behind, so
 * memory stays flat (no stream of fresh buffers left for the garbage collector).
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
  hashes[m.index].update(new Uint8Array(m.data, 0, m.length))
  parentPort.postMessage({done: m.length, data: m.data}, [m.data])
})
`

/** Bytes handed to the worker and not hashed yet, beyond which `room()` waits. */
const WINDOW = 8 * 1024 * 1024
/** Size of the pool's buffers; a longer run of bytes goes over in several. */
const PIECE = 1024 * 1024

export class PartHasher {
  private readonly worker = new Worker(WORKER, {eval: true})
  private readonly free: ArrayBuffer[] = []
  private behind = 0
  private waiters: Array<() => void> = []
  private failure: unknown
  private result?: (digests: string[]) => void

  constructor() {
    this.worker.on('message', (m: {done?: number; data?: ArrayBuffer; digests?: string[]}) => {
      if (m.digests) this.result?.(m.digests)
      else {
        if (m.data) this.free.push(m.data)
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
    for (let from = 0; from < data.length; from += PIECE) {
      const length = Math.min(PIECE, data.length - from)
      // An ArrayBuffer of its own (never Buffer's shared pool: it is transferred), not zeroed.
      const buffer = this.free.pop() ?? Buffer.allocUnsafeSlow(PIECE).buffer
      data.copy(new Uint8Array(buffer), 0, from, from + length)
      this.behind += length
      this.worker.postMessage({index, data: buffer, length}, [buffer])
    }
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
