/**
 * A blob on its way into the store: the temp file it is being written to and how many bytes of it are on disk so
 * far. The bundle writer follows it (reads below `written` while the download continues), so the tar is written
 * while the blob still downloads instead of after it. Only `complete` means the bytes were verified; a reader that
 * copied bytes before then must treat them as provisional until `settled()` resolves.
 */
import {write, writev} from 'node:fs'
import {Writable} from 'node:stream'
import {ChangeSignal} from '../util/async.js'

export type FillState = 'filling' | 'complete' | 'failed'

export class BlobFill {
  written = 0
  state: FillState = 'filling'
  error: unknown
  private readonly changes = new ChangeSignal()

  constructor(
    /** Where the bytes are being written (renamed to `finalPath` once verified). */
    readonly tempPath: string,
    readonly finalPath: string,
    readonly size: number,
  ) {}

  /** Resolves when more bytes are on disk or the blob is complete; rejects when the download failed. */
  changed(): Promise<void> {
    if (this.state === 'complete') return Promise.resolve()
    return this.changes.wait()
  }

  advance(n: number): void {
    this.written += n
    this.changes.wake()
  }

  complete(): void {
    this.state = 'complete'
    this.changes.wake()
  }

  fail(error: unknown): void {
    if (this.state !== 'filling') return
    this.state = 'failed'
    this.error = error
    this.changes.fail(error)
  }
}

/** Write every byte of `buffers` at `position` (one writev; a short write, rare on regular files, is finished with write). */
function writeFully(fd: number, buffers: Buffer[], position: number, callback: (error: Error | null) => void): void {
  const total = buffers.reduce((sum, b) => sum + b.length, 0)
  const rest = (data: Buffer, offset: number): void => {
    if (offset >= data.length) return callback(null)
    write(fd, data, offset, data.length - offset, position + offset, (error, n) => (error ? callback(error) : rest(data, offset + n)))
  }
  writev(fd, buffers, position, (error, n) => {
    if (error) return callback(error)
    if (n >= total) return callback(null)
    rest(Buffer.concat(buffers), n)
  })
}

/**
 * Bytes gathered before one write: a download delivers 64 KiB pieces, and each write is a trip through libuv's thread
 * pool that the copier following the file then mirrors with a read and a write of its own. Gathering 512 KiB makes
 * about eight times fewer of them (measured: the main thread's share of create went mostly to dispatching them).
 */
const GATHER_BYTES = 512 * 1024
/** And at most this many pieces in one writev (a trickle of small chunks: far below IOV_MAX). */
const GATHER_PIECES = 64

/**
 * A Writable onto an open file descriptor, from `position` on, that reports each completed write to `onBytes` and,
 * when `follow` (default), to the BlobFill (a reader follows those bytes). Chunks are gathered up to GATHER_BYTES (and
 * those that queue up while a write is in flight are added) and written together, one syscall; the rest is written
 * when the stream ends. What was gathered but not written when the stream fails is dropped, as if never received.
 */
export class FillSink extends Writable {
  private position: number
  private readonly follow: boolean
  private inFlight: Promise<void> = Promise.resolve()
  private gathered: Buffer[] = []
  private gatheredBytes = 0

  constructor(
    private readonly fd: number,
    private readonly fill: BlobFill,
    private readonly onBytes?: (n: number) => void,
    options: {position?: number; follow?: boolean} = {},
  ) {
    super({highWaterMark: 1024 * 1024})
    this.position = options.position ?? 0
    this.follow = options.follow ?? true
  }

  /** Resolves once no write is in flight (after a failure, before the file is closed or renamed). */
  idle(): Promise<void> {
    return this.inFlight
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{chunk}], callback)
  }

  override _writev(chunks: Array<{chunk: Buffer}>, callback: (error?: Error | null) => void): void {
    for (const {chunk} of chunks) {
      this.gathered.push(chunk)
      this.gatheredBytes += chunk.length
    }
    if (this.gatheredBytes < GATHER_BYTES && this.gathered.length < GATHER_PIECES) return callback()
    this.writeGathered(callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.gatheredBytes === 0) return callback()
    this.writeGathered(callback)
  }

  private writeGathered(callback: (error?: Error | null) => void): void {
    const buffers = this.gathered
    const n = this.gatheredBytes
    this.gathered = []
    this.gatheredBytes = 0
    this.inFlight = new Promise((settled) => {
      writeFully(this.fd, buffers, this.position, (error) => {
        settled()
        if (error) return callback(error)
        this.position += n
        if (this.follow) this.fill.advance(n)
        this.onBytes?.(n)
        callback()
      })
    })
  }
}
