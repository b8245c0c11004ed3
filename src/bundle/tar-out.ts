/**
 * The bundle file while it is written. Every region goes to its final offset as soon as its bytes exist: the small
 * entries and headers as the copiers reach them, each blob while it downloads, next to the others in flight.
 * One hasher walks the file in tar order for BUNDLE.sha256. It takes a blob's bytes straight from the copier's buffer
 * when it is already waiting at that point; when a blob got ahead of it, it reads them back from the file (the page
 * cache). So a blob that lands out of order never holds the others up, and once the downloads end only the hashing of
 * what landed last remains (before: the copying of it as well, one blob after the other).
 */
import {createHash} from 'node:crypto'
import type {FileHandle} from 'node:fs/promises'
import {ChangeSignal} from '../util/async.js'

/** Positional writes into the open tar, all tracked so that none is in flight when the file is closed. */
export class TarOut {
  readonly hash = createHash('sha256')
  private readonly pending = new Set<Promise<void>>()
  private failure: unknown

  constructor(readonly handle: FileHandle) {}

  /** Write all of `data` at `at`; `data` must stay untouched until the returned promise settles. */
  write(data: Buffer, at: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    const done = this.writeAll(data, at)
    this.pending.add(done)
    done.then(
      () => this.pending.delete(done),
      (error: unknown) => {
        this.pending.delete(done)
        if (this.failure === undefined) this.failure = error
      },
    )
    return done
  }

  private async writeAll(data: Buffer, at: number): Promise<void> {
    let offset = 0
    while (offset < data.length) {
      const {bytesWritten} = await this.handle.write(data, offset, data.length - offset, at + offset)
      offset += bytesWritten
    }
  }

  /** Wait for every write; rejects with the first write error. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
    if (this.failure !== undefined) throw this.failure
  }
}

/**
 * One blob's data in the tar. `written` counts the bytes that are in the file (contiguous from the blob's start),
 * `hashed` those that went into the tar's hash. Chunks must be put in order of position.
 */
export class BlobRegion {
  written = 0
  hashed = 0
  /** Of `hashed`, the bytes read back from the file (the rest were hashed from the copier's buffer). */
  readBack = 0
  private frontier = false
  private chain: Promise<void> = Promise.resolve()
  private readonly changes = new ChangeSignal()

  constructor(
    private readonly out: TarOut,
    readonly offset: number,
    readonly size: number,
  ) {}

  /** Queue bytes [position, position + data.length); resolves once they are in the file (the buffer is free again). */
  put(data: Buffer, position: number): Promise<void> {
    if (this.frontier && this.hashed === position) {
      // The hasher waits right here: hash from the buffer, no reading back.
      this.out.hash.update(data)
      this.hashed += data.length
      this.changes.wake()
    }
    const write = this.out.write(data, this.offset + position)
    const end = position + data.length
    // `written` only grows over a contiguous prefix: writes of one blob may complete out of order.
    this.chain = Promise.all([this.chain, write]).then(() => {
      this.written = Math.max(this.written, end)
      this.changes.wake()
    })
    this.chain.catch(() => undefined) // the failure reaches the copier through `write`, and the hasher through fail()
    return write
  }

  /** The copier gave up: wake the hasher with the reason. */
  fail(error: unknown): void {
    this.changes.fail(error)
  }

  /**
   * Hash this region into the tar's hash, in order: called by the hasher when it reaches the region. What is already
   * in the file is read back with two buffers, the next read running while the last one is hashed (a quarter faster
   * than one after the other: this is the work left once the downloads end).
   */
  async hashInto(handle: FileHandle, buffers: [Buffer, Buffer]): Promise<void> {
    this.frontier = true
    let turn = 0
    const readAt = (at: number) => {
      const buffer = buffers[turn++ & 1]
      return {at, buffer, read: handle.read(buffer, 0, Math.min(buffer.length, this.written - at), this.offset + at)}
    }
    let ahead: ReturnType<typeof readAt> | undefined
    try {
      while (this.hashed < this.size) {
        if (!ahead && this.written > this.hashed) ahead = readAt(this.hashed)
        if (!ahead) {
          await this.changes.wait()
          continue
        }
        const current = ahead
        ahead = undefined
        const {bytesRead} = await current.read
        if (bytesRead === 0) throw new Error(`internal: the bundle ended at ${this.offset + current.at} while hashing it`)
        const end = current.at + bytesRead
        if (this.written > end) ahead = readAt(end)
        this.out.hash.update(current.buffer.subarray(0, bytesRead))
        this.hashed = end
        this.readBack += bytesRead
      }
    } finally {
      this.frontier = false
      await ahead?.read.catch(() => undefined) // the buffers are the next region's
    }
  }
}

/**
 * Hash the whole tar in order: small runs from memory, blob regions as they fill (see BlobRegion.hashInto). `stopped`
 * is checked between parts; a failed region rejects.
 */
export async function hashInOrder(out: TarOut, parts: Array<Buffer | BlobRegion>, stopped: () => boolean): Promise<void> {
  const buffers: [Buffer, Buffer] = [Buffer.allocUnsafe(1024 * 1024), Buffer.allocUnsafe(1024 * 1024)]
  for (const part of parts) {
    if (stopped()) return
    if (Buffer.isBuffer(part)) out.hash.update(part)
    else await part.hashInto(out.handle, buffers)
  }
}
