/**
 * Filling the bundle file from its layout. The layout (`layoutOf`) is known before the first byte: runs of small bytes
 * (headers, padding, small files, manifests) and blob data, each at its final offset. A few copiers take the segments
 * in tar order and write each blob as its bytes arrive: from a BlobFile (a file, possibly still being downloaded: the
 * copier follows it) or any readable stream. One hasher takes the SHA-256 of the whole file in order alongside
 * (tar-out.ts). The copiers share a few buffers, so memory stays flat whatever the size of a layer.
 */
import {createHash} from 'node:crypto'
import {setMaxListeners} from 'node:events'
import {statfs, type FileHandle} from 'node:fs/promises'
import {KubeferryError} from '../oci/errors.js'
import {mapLimit} from '../util/async.js'
import {END_OF_ARCHIVE_BYTES} from './layout.js'
import type {PlannedBlob} from './plan.js'
import {fileHeader, paddingFor} from './tar-header.js'
import {BlobRegion, hashInOrder, type TarOut} from './tar-out.js'

/**
 * A blob's bytes in a file that may still be growing (a download in progress). The copier reads only below
 * `readable()`, waits on `more()` for the rest, and fails if `more()` rejects (the download failed).
 */
export interface BlobFile {
  kind: 'file'
  /** Open the file that holds, or is receiving, the blob. */
  open(): Promise<FileHandle>
  /** Bytes that can be read now; the blob's size once it is complete. */
  readable(): number
  /** Resolves when `readable()` has grown or the blob is complete; rejects when it failed. */
  more(): Promise<void>
  /** Resolves once the whole blob is verified (the copier waits for it before taking its next segment). */
  settled(): Promise<void>
  /**
   * Hash the bytes while copying and fail on a mismatch: for a file this build did not verify itself (a cache hit
   * from an earlier build). `onMismatch` runs first (e.g. to drop the damaged cache file).
   */
  verify?: {label: string; onMismatch?: () => Promise<void>}
}

/** What fillTar needs from the writer's options. */
export interface FillOptions {
  /**
   * The blob's bytes: a BlobFile, or a stream verified while it flows. May wait until a download starts. Not asked for
   * blobs held in memory (manifests): layoutOf writes those with the headers.
   */
  openBlob: (blob: PlannedBlob) => Promise<NodeJS.ReadableStream | BlobFile>
  /** Bytes written into the tar (increments; they add up to the tar's size). */
  onTarBytes?: (n: number) => void
  onBlobWritten?: (blob: PlannedBlob) => void
  /**
   * Blobs copied at the same time (default 8), sharing as many 1 MiB buffers (at least 4): at least the downloads in
   * flight. The writer makes it one on a filesystem without sparse files (see keepsHoles).
   */
  copiers?: number
  signal?: AbortSignal
}

/** One entry of the tar, as the layout needs it. */
export interface LayoutEntry {
  name: string
  size: number
  mode: number
  bytes?: Buffer
  blob?: PlannedBlob
}

/** Copy buffer size (see BufferPool). */
const CHUNK = 1024 * 1024
/** A bundle that is fsynced at the end is flushed to disk in the background every this many bytes (TarOut.syncEvery). */
const SYNC_EVERY = 32 * 1024 * 1024
/** Blobs copied at the same time (in tar order) by default: as many as downloads run by default. */
const COPIERS = 8

/**
 * Filesystems without sparse files fill a gap with zeros as soon as something is written past the end of a file:
 * FAT and exFAT (the USB stick an operator carries across the gap), NTFS, HFS+, and FUSE ones such as ntfs-3g (which
 * FUSE filesystem it is cannot be told, so all of them). Blobs written out of order there would write most of the
 * bundle twice; the writer keeps to one copier, so that each write lands right after the previous one.
 */
const NO_SPARSE_FILES = new Set([0x4d44, 0x2011bab0, 0x5346544e, 0x482b, 0x65735546])

/** Whether the filesystem of type `type` (statfs f_type) keeps a gap in a file as a hole. */
export function keepsHoles(type: number): boolean {
  return !NO_SPARSE_FILES.has(type)
}

export async function keepsHolesIn(dir: string): Promise<boolean> {
  try {
    return keepsHoles(Number((await statfs(dir)).type))
  } catch {
    return false // unknown: write in order
  }
}

/** The tar as regions at their final offsets: runs of small bytes (headers, padding, small files) and blob data. */
export type Segment = {kind: 'bytes'; offset: number; data: Buffer} | {kind: 'blob'; offset: number; blob: PlannedBlob}

export function layoutOf(entries: LayoutEntry[], mtime: number): Segment[] {
  const segments: Segment[] = []
  let run: Buffer[] = []
  let runStart = 0
  let offset = 0
  const add = (data: Buffer): void => {
    run.push(data)
    offset += data.length
  }
  for (const entry of entries) {
    add(fileHeader(entry.name, entry.size, entry.mode, mtime))
    const bytes = entry.bytes ?? entry.blob?.bytes // manifests are in memory: written with the headers
    if (bytes) {
      if (bytes.length !== entry.size) throw new KubeferryError('INTERNAL', `${entry.name}: ${bytes.length} bytes in memory, ${entry.size} planned`)
      add(bytes)
    } else {
      segments.push({kind: 'bytes', offset: runStart, data: Buffer.concat(run)})
      segments.push({kind: 'blob', offset, blob: entry.blob!})
      offset += entry.size
      run = []
      runStart = offset
    }
    const pad = paddingFor(entry.size)
    if (pad > 0) add(Buffer.alloc(pad))
  }
  add(Buffer.alloc(END_OF_ARCHIVE_BYTES))
  segments.push({kind: 'bytes', offset: runStart, data: Buffer.concat(run)})
  return segments.filter((s) => s.kind === 'blob' || s.data.length > 0)
}

function mismatch(label: string, what: string): KubeferryError {
  return new KubeferryError('DIGEST_MISMATCH', `${label}: ${what}`, {hint: 'the bytes are corrupt or were tampered with; nothing was kept'})
}

/** Resolves with `promise`, or rejects as soon as `signal` aborts (a copier must not wait for a download that is being stopped). */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // When the abort wins, nobody waits for `promise`: its rejection (a failed download's error) must not go unhandled,
  // or Node.js ends the process with it instead of the one-line error.
  promise.catch(() => undefined)
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, {once: true})
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/**
 * The copiers' buffers, shared: a copier holds one only from its read until that write is done, never while it waits
 * for a download to deliver more, so eight copiers mostly waiting need far fewer than sixteen buffers.
 */
class BufferPool {
  private readonly free: Buffer[] = []
  private readonly waiting: Array<(buffer: Buffer) => void> = []
  private allocated = 0

  constructor(
    private readonly count: number,
    private readonly size: number,
  ) {}

  take(): Promise<Buffer> {
    const buffer = this.free.pop() ?? (this.allocated < this.count ? (this.allocated++, Buffer.allocUnsafe(this.size)) : undefined)
    if (buffer) return Promise.resolve(buffer)
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  give(buffer: Buffer): void {
    const next = this.waiting.shift()
    if (next) next(buffer)
    else this.free.push(buffer)
  }
}

async function copyFile(region: BlobRegion, blob: PlannedBlob, file: BlobFile, pool: BufferPool, onBytes: ((n: number) => void) | undefined, signal: AbortSignal): Promise<void> {
  const handle = await unlessAborted(file.open(), signal)
  const check = file.verify ? createHash('sha256') : undefined
  const writes: Array<Promise<void> | undefined> = [undefined, undefined] // two in flight per blob
  try {
    let position = 0
    for (let turn = 0; position < blob.size; turn++) {
      signal.throwIfAborted()
      // Follow a growing file a whole buffer at a time (or to its end): reading each few kilobytes as they land
      // costs more in system calls and pool round trips than it gains in overlap.
      const want = Math.min(CHUNK, blob.size - position)
      while (file.readable() - position < want) await unlessAborted(file.more(), signal)
      const slot = turn & 1
      await writes[slot]
      const buffer = await unlessAborted(pool.take(), signal)
      let bytesRead: number
      try {
        ;({bytesRead} = await handle.read(buffer, 0, Math.min(buffer.length, file.readable() - position, blob.size - position), position))
        if (bytesRead === 0) throw new KubeferryError('IO', `${blob.digest}: the cached file ended after ${position} of ${blob.size} bytes`, {hint: 'run again; the damaged cache entry is fetched anew'})
      } catch (error) {
        pool.give(buffer)
        throw error
      }
      const data = buffer.subarray(0, bytesRead)
      check?.update(data)
      const written = region.put(data, position).finally(() => pool.give(buffer))
      written.catch(() => undefined) // a failed write is reported where it is awaited, not as an unhandled rejection
      writes[slot] = written
      position += bytesRead
      onBytes?.(bytesRead)
    }
    await Promise.all(writes)
    await unlessAborted(file.settled(), signal)
    if (check && file.verify && `sha256:${check.digest('hex')}` !== blob.digest) {
      await file.verify.onMismatch?.()
      throw mismatch(file.verify.label, `content digest is not ${blob.digest}`)
    }
  } finally {
    await Promise.allSettled(writes)
    await handle.close()
  }
}

async function copyStream(region: BlobRegion, blob: PlannedBlob, stream: NodeJS.ReadableStream, onBytes: ((n: number) => void) | undefined, signal: AbortSignal): Promise<void> {
  let copied = 0
  let last: Promise<void> | undefined
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal.throwIfAborted()
      if (copied + chunk.length > blob.size) throw new KubeferryError('SIZE_MISMATCH', `blob ${blob.digest}: more than the expected ${blob.size} bytes`)
      await last
      last = region.put(chunk, copied)
      copied += chunk.length
      onBytes?.(chunk.length)
    }
    await last
  } finally {
    await last?.catch(() => undefined)
  }
  if (copied !== blob.size) throw new KubeferryError('SIZE_MISMATCH', `blob ${blob.digest}: expected ${blob.size} bytes, got ${copied}`)
}

function isBlobFile(value: NodeJS.ReadableStream | BlobFile): value is BlobFile {
  return (value as BlobFile).kind === 'file'
}

/**
 * Fill `out` from the layout: `options.copiers` workers take the segments in tar order (each blob as its bytes
 * arrive), and the in-order hash runs alongside. Returns when every byte is written and hashed; on the first failure
 * everything stops and that failure is thrown once nothing is in flight any more.
 */
export async function fillTar(out: TarOut, segments: Segment[], options: FillOptions, fsync: boolean): Promise<void> {
  const stop = new AbortController()
  const regions = new Map<Segment, BlobRegion>()
  let failure: {error: unknown} | undefined
  const failed = (error: unknown): void => {
    if (failure === undefined) failure = {error}
    stop.abort(error)
    for (const region of regions.values()) region.fail(error)
  }
  // An abort from outside (Ctrl-C, a failed download) is a failure like any other: nothing is renamed into place.
  const onOuterAbort = (): void => failed(options.signal?.reason)
  options.signal?.addEventListener('abort', onOuterAbort)
  if (options.signal?.aborted) onOuterAbort()
  for (const segment of segments) if (segment.kind === 'blob') regions.set(segment, new BlobRegion(out, segment.offset, segment.blob.size))
  // Everything is taken in tar order, the small runs too: with one copier every write lands right after the previous
  // one, and with several the file never grows far past the blobs being copied.
  const copiers = Math.max(1, options.copiers ?? COPIERS)
  // Each copier waits on `stop` (unlessAborted), beside the hasher and the regions: more than Node's default of 10
  // listeners before it prints a leak warning on the operator's terminal (create --concurrency 16 did).
  setMaxListeners(copiers + 16, stop.signal)
  const pool = new BufferPool(Math.max(4, copiers), CHUNK)
  const copy = async (segment: Segment): Promise<void> => {
    if (failure !== undefined) return
    try {
      if (segment.kind === 'bytes') {
        await out.write(segment.data, segment.offset)
        options.onTarBytes?.(segment.data.length)
        return
      }
      const region = regions.get(segment)!
      const source = await unlessAborted(options.openBlob(segment.blob), stop.signal)
      if (isBlobFile(source)) await copyFile(region, segment.blob, source, pool, options.onTarBytes, stop.signal)
      else await copyStream(region, segment.blob, source, options.onTarBytes, stop.signal)
      options.onBlobWritten?.(segment.blob)
    } catch (error) {
      failed(error)
    }
  }
  const hasher = async (): Promise<void> => {
    const parts = segments.map((s) => (s.kind === 'bytes' ? s.data : regions.get(s)!))
    await hashInOrder(out, parts, () => failure !== undefined).catch(failed)
  }
  if (fsync) out.syncEvery(SYNC_EVERY)
  const hashed = hasher()
  try {
    await mapLimit(segments, copiers, copy)
    await out.flush().catch(failed)
    // Every byte is in the file; the hasher may still be reading back the blobs that landed last. Flushing the file
    // to disk meanwhile takes that time off the end (the fsync after this one finds little left to write).
    const synced = failure === undefined && fsync ? out.datasync() : undefined
    await hashed
    await synced?.catch(failed)
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
  if (failure !== undefined) throw failure.error
}
