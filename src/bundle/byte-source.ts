/**
 * The bytes of a bundle, by range: everything that reads a bundle (the tar index, BundleReader, serve, verify) goes
 * through this, never through the file itself: one file (FileBytes) or a bundle in parts (PartedBytes, parted-bytes.ts,
 * which maps an offset to (part, offset in part)). `openBundleBytes` (parted-bytes.ts) picks the one a path names.
 */
import {createReadStream} from 'node:fs'
import {open, stat} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'

/** An open view for many reads in a row (a scan of the tar headers): one open, one close. */
export interface ByteReader {
  /** Up to `length` bytes from `offset` (fewer only at the end of the source). */
  read(offset: number, length: number): Promise<Buffer>
  /** Up to `length` bytes into `buffer` from `position` (fewer at a part's end or the source's end; 0 past it). */
  readInto(buffer: Buffer, length: number, position: number): Promise<number>
  close(): Promise<void>
}

export interface ByteSource {
  /** Names the bytes in messages (the bundle's path). */
  readonly label: string
  /** Total length in bytes. */
  readonly size: number
  /** Up to `length` bytes from `offset` (fewer only at the end of the source). */
  read(offset: number, length: number): Promise<Buffer>
  /** For many reads in a row; close it when done. */
  open(): Promise<ByteReader>
  /** The bytes [start, end) as a stream; an empty range is an empty stream. */
  stream(start: number, end: number, options?: {highWaterMark?: number}): Readable
}

/** One read through a reader opened and closed for it (a source's `read`, for those that open per call). */
export async function readOnce(source: Pick<ByteSource, 'open'>, offset: number, length: number): Promise<Buffer> {
  const reader = await source.open()
  try {
    return await reader.read(offset, length)
  } finally {
    await reader.close()
  }
}

/** One file. Each read opens the file (no descriptor outlives a call), as the reader always did. */
export class FileBytes implements ByteSource {
  private constructor(
    readonly label: string,
    readonly size: number,
  ) {}

  /** Stat the file; an unreadable or absent file is an IO error naming it. */
  static async open(path: string): Promise<FileBytes> {
    try {
      const s = await stat(path)
      if (!s.isFile()) throw Object.assign(new Error('not a regular file'), {code: s.isDirectory() ? 'EISDIR' : 'ENOTREG'})
      return new FileBytes(path, s.size)
    } catch (error) {
      throw new KubeferryError('IO', `cannot open bundle ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'check the path and permissions'})
    }
  }

  read(offset: number, length: number): Promise<Buffer> {
    return readOnce(this, offset, length)
  }

  async open(): Promise<ByteReader> {
    const handle = await open(this.label, 'r')
    const size = this.size
    return {
      readInto: async (buffer, length, position) => (await handle.read(buffer, 0, length, position)).bytesRead,
      async read(offset, length) {
        const wanted = Math.max(0, Math.min(length, size - offset))
        const buffer = Buffer.alloc(wanted)
        let done = 0
        while (done < wanted) {
          const {bytesRead} = await handle.read(buffer, done, wanted - done, offset + done)
          if (bytesRead === 0) break // the file shrank under us: the caller sees a short buffer
          done += bytesRead
        }
        return done === wanted ? buffer : buffer.subarray(0, done)
      },
      close: () => handle.close(),
    }
  }

  stream(start: number, end: number, options: {highWaterMark?: number} = {}): Readable {
    // createReadStream cannot express an empty range (its `end` is inclusive).
    if (end <= start) return Readable.from([])
    // A buffer no larger than the range: a 1 MiB read size must not allocate 1 MiB for a 700-byte config.
    const highWaterMark = options.highWaterMark ? Math.min(options.highWaterMark, end - start) : undefined
    return createReadStream(this.label, {start, end: end - 1, ...(highWaterMark ? {highWaterMark} : {})})
  }
}
