/**
 * The bundle file while it is written. Every region goes to its final offset as soon as its bytes exist: the small
 * entries and headers as the copiers reach them, each blob while it downloads, next to the others in flight.
 * One hasher walks the file in tar order for BUNDLE.sha256. It takes a blob's bytes straight from the copier's buffer
 * when it is already waiting at that point; when a blob got ahead of it, it reads them back from the file (the page
 * cache). So a blob that lands out of order never holds the others up, and once the downloads end only the hashing of
 * what landed last remains (before: the copying of it as well, one blob after the other).
 *
 * The output is one file, or (create --split) consecutive parts of `partSize` bytes (OutParts, see part-files.ts):
 * an offset in the bundle maps to (part, offset in the part), and the in-order hash gives each part's sha256 beside
 * the whole bundle's as the bytes pass, with no second read (the parts' on a worker thread: part-hasher.ts).
 */
import {createHash} from 'node:crypto'
import type {FileHandle} from 'node:fs/promises'
import {ChangeSignal} from '../util/async.js'
import {PartHasher} from './part-hasher.js'

/** A bundle written as consecutive parts: part `index` (from 0) holds bytes [index × partSize, (index + 1) × partSize). */
export interface OutParts {
  readonly partSize: number
  /** The open file of part `index` (opened on first use, then the same handle). */
  file(index: number): Promise<FileHandle>
  /** Every part file opened so far. */
  opened(): FileHandle[]
}

/** Positional writes into the open tar, all tracked so that none is in flight when the file is closed. */
export class TarOut {
  /** The whole bundle's hash, fed in order through `hashed`. */
  readonly hash = createHash('sha256')
  private readonly partHasher?: PartHasher
  private hashedBytes = 0
  private readonly pending = new Set<Promise<void>>()
  private failure: unknown
  private readonly single?: FileHandle
  private readonly parts?: OutParts
  /** With syncEvery: bytes written since the last background datasync began, and that datasync. */
  private syncEveryBytes = 0
  private unsynced = 0
  private syncing: Promise<void> | undefined

  constructor(target: FileHandle | OutParts) {
    if ('partSize' in target) {
      this.parts = target
      this.partHasher = new PartHasher()
    } else this.single = target
  }

  /** The next bytes of the bundle in order, for its hash (and its parts'). */
  hashed(data: Buffer): void {
    this.hash.update(data)
    if (this.parts) {
      const {partSize} = this.parts
      let from = 0
      while (from < data.length) {
        const index = Math.floor(this.hashedBytes / partSize)
        const take = Math.min(data.length - from, (index + 1) * partSize - this.hashedBytes)
        this.partHasher!.update(index, from === 0 && take === data.length ? data : data.subarray(from, from + take))
        from += take
        this.hashedBytes += take
      }
    }
  }

  /** Undefined, or a promise to await before hashing more: the parts' hasher is too far behind. */
  room(): Promise<void> | undefined {
    return this.partHasher?.room()
  }

  /** Each part's sha256 (hex), in order, once everything was hashed; empty for a single file. */
  async partDigests(): Promise<string[]> {
    return this.partHasher ? this.partHasher.digests() : []
  }

  /** Stop the parts' hasher (after a failure; partDigests stops it otherwise). */
  async stop(): Promise<void> {
    await this.partHasher?.stop()
  }

  /**
   * Flush the written bytes to disk in the background every `bytes` (one datasync at a time), for a bundle that is
   * fsynced at the end: the disk then writes the bundle while it downloads, and the last fsync finds little left (it
   * took 0.1 s per 84 MB after the last byte on this machine's virtual disk).
   */
  syncEvery(bytes: number): void {
    this.syncEveryBytes = bytes
  }

  /** Write all of `data` at `at`; `data` must stay untouched until the returned promise settles. */
  write(data: Buffer, at: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    const done = this.single ? writeAll(this.single, data, 0, data.length, at) : this.writeParts(data, at)
    this.pending.add(done)
    done.then(
      () => {
        this.pending.delete(done)
        this.unsynced += data.length
        if (this.syncEveryBytes > 0 && this.unsynced >= this.syncEveryBytes && !this.syncing && this.failure === undefined) this.syncInBackground()
      },
      (error: unknown) => {
        this.pending.delete(done)
        if (this.failure === undefined) this.failure = error
      },
    )
    return done
  }

  private syncInBackground(): void {
    this.unsynced = 0
    this.syncing = Promise.all(this.files().map((h) => h.datasync())).then(
      () => {
        this.syncing = undefined
      },
      (error: unknown) => {
        this.syncing = undefined
        if (this.failure === undefined) this.failure = error
      },
    )
  }

  /** A write that crosses a part's end goes on into the next part. */
  private async writeParts(data: Buffer, at: number): Promise<void> {
    const {partSize} = this.parts!
    const writes: Promise<void>[] = []
    let from = 0
    while (from < data.length) {
      const start = from
      const index = Math.floor((at + start) / partSize)
      const inPart = at + start - index * partSize
      const take = Math.min(data.length - start, partSize - inPart)
      writes.push(this.parts!.file(index).then((handle) => writeAll(handle, data, start, take, inPart)))
      from += take
    }
    await Promise.all(writes)
  }

  /** Read back up to `length` bytes at `at` (a read stops at a part's end). */
  async read(buffer: Buffer, length: number, at: number): Promise<{bytesRead: number}> {
    if (this.single) return this.single.read(buffer, 0, length, at)
    const {partSize} = this.parts!
    const index = Math.floor(at / partSize)
    const handle = await this.parts!.file(index)
    return handle.read(buffer, 0, Math.min(length, (index + 1) * partSize - at), at - index * partSize)
  }

  /** The files written so far. */
  files(): FileHandle[] {
    return this.single ? [this.single] : this.parts!.opened()
  }

  async datasync(): Promise<void> {
    await this.syncing
    if (this.failure !== undefined) throw this.failure
    await Promise.all(this.files().map((h) => h.datasync()))
  }

  /** Wait for every write (and a background datasync); rejects with the first error. */
  async flush(): Promise<void> {
    while (this.pending.size > 0 || this.syncing) await Promise.allSettled([...this.pending, this.syncing])
    if (this.failure !== undefined) throw this.failure
  }
}

async function writeAll(handle: FileHandle, data: Buffer, start: number, length: number, at: number): Promise<void> {
  let offset = 0
  while (offset < length) {
    const {bytesWritten} = await handle.write(data, start + offset, length - offset, at + offset)
    offset += bytesWritten
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
      this.out.hashed(data)
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
  async hashInto(buffers: [Buffer, Buffer]): Promise<void> {
    this.frontier = true
    let turn = 0
    const readAt = (at: number) => {
      const buffer = buffers[turn++ & 1]
      return {at, buffer, read: this.out.read(buffer, Math.min(buffer.length, this.written - at), this.offset + at)}
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
        this.out.hashed(current.buffer.subarray(0, bytesRead))
        this.hashed = end
        this.readBack += bytesRead
        const room = this.out.room()
        if (room) await room
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
    if (Buffer.isBuffer(part)) out.hashed(part)
    else await part.hashInto(buffers)
    const room = out.room()
    if (room) await room
  }
}
