/**
 * A bundle in parts as one range of bytes (issue 20): an offset maps to (part, offset in part), a read or a stream
 * that crosses a boundary goes on in the next part. Nothing is concatenated on disk and no part is held in memory.
 */
import {createReadStream} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {FileBytes, readOnce, type ByteReader, type ByteSource} from './byte-source.js'
import {findParts, isPartedPath, type BundleParts} from './parts.js'

export class PartedBytes implements ByteSource {
  readonly size: number
  /** Offset in the bundle of each part's first byte. */
  private readonly starts: number[]

  constructor(
    readonly label: string,
    readonly parts: BundleParts,
  ) {
    let offset = 0
    this.starts = parts.sizes.map((size) => {
      const start = offset
      offset += size
      return start
    })
    this.size = offset
  }

  /** Find and check the parts `path` names (a part, or the bundle path with only parts beside it). */
  static async open(path: string): Promise<PartedBytes> {
    return new PartedBytes(path, await findParts(path))
  }

  /** The part holding the bundle's byte `offset` (the last part for offsets at or past the end). */
  partAt(offset: number): number {
    let lo = 0
    let hi = this.starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.starts[mid] <= offset) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** The parts' file names that hold the bytes [start, end). */
  partsOf(start: number, end: number): string[] {
    const first = this.partAt(start)
    const last = this.partAt(Math.max(start, end - 1))
    return this.parts.files.slice(first, last + 1)
  }

  read(offset: number, length: number): Promise<Buffer> {
    return readOnce(this, offset, length)
  }

  /** A reader keeping each part it touched open until closed (a tar scan reads every part in turn). */
  async open(): Promise<PartedReader> {
    return new PartedReader(this)
  }

  stream(start: number, end: number, options: {highWaterMark?: number} = {}): Readable {
    if (end <= start) return Readable.from([])
    const highWaterMark = options.highWaterMark ? Math.min(options.highWaterMark, end - start) : undefined
    const ranges: Array<{file: string; start: number; end: number}> = []
    for (let i = this.partAt(start); i < this.parts.files.length && this.starts[i] < end; i++) {
      const from = Math.max(start, this.starts[i]) - this.starts[i]
      const to = Math.min(end, this.starts[i] + this.parts.sizes[i]) - this.starts[i]
      if (to > from) ranges.push({file: this.parts.files[i], start: from, end: to - 1})
    }
    // Within one part (nearly every blob): that part's own file stream, as fast as a whole bundle's.
    if (ranges.length === 1) return createReadStream(ranges[0].file, {start: ranges[0].start, end: ranges[0].end, ...(highWaterMark ? {highWaterMark} : {})})
    // Each range read in turn; ending or destroying the outer stream destroys the part's stream in flight.
    async function* chain(): AsyncGenerator<Buffer> {
      for (const range of ranges) yield* createReadStream(range.file, {start: range.start, end: range.end, ...(highWaterMark ? {highWaterMark} : {})}) as AsyncIterable<Buffer>
    }
    return Readable.from(chain(), {objectMode: false, ...(highWaterMark ? {highWaterMark} : {})})
  }

  /** Offset of part `index`'s first byte in the bundle. */
  startOf(index: number): number {
    return this.starts[index]
  }
}

export class PartedReader implements ByteReader {
  private readonly handles = new Map<number, Promise<FileHandle>>()

  constructor(private readonly bytes: PartedBytes) {}

  private handle(index: number): Promise<FileHandle> {
    let handle = this.handles.get(index)
    if (!handle) {
      const file = this.bytes.parts.files[index]
      handle = open(file, 'r').catch((error: NodeJS.ErrnoException) => {
        throw new KubeferryError('IO', `cannot open part ${file}: ${error.code ?? error.message}`, {hint: 'check the part is there and readable, or copy it again'})
      })
      handle.catch(() => undefined)
      this.handles.set(index, handle)
    }
    return handle
  }

  /** Up to `length` bytes into `buffer` from the bundle's `position`, stopping at a part's end; 0 at the end. */
  async readInto(buffer: Buffer, length: number, position: number): Promise<number> {
    if (position >= this.bytes.size || length <= 0) return 0
    const index = this.bytes.partAt(position)
    const inPart = position - this.bytes.startOf(index)
    const wanted = Math.min(length, this.bytes.parts.sizes[index] - inPart)
    const {bytesRead} = await (await this.handle(index)).read(buffer, 0, wanted, inPart)
    return bytesRead
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const wanted = Math.max(0, Math.min(length, this.bytes.size - offset))
    const buffer = Buffer.alloc(wanted)
    let done = 0
    while (done < wanted) {
      const got = await this.readInto(buffer.subarray(done), wanted - done, offset + done)
      if (got === 0) break // a part shrank under us: the caller sees a short buffer
      done += got
    }
    return done === wanted ? buffer : buffer.subarray(0, done)
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()))
  }
}

/** The bytes of the bundle `path` names: its file, or its parts when `path` is a part or only parts are there. */
export async function openBundleBytes(path: string): Promise<ByteSource> {
  return isPartedPath(path) ? PartedBytes.open(path) : FileBytes.open(path)
}
