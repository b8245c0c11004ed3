/**
 * Blob bytes out of a bundle, read by offset. A blob whose content has not been hashed yet (`--no-verify`) is hashed
 * while it is sent, and the LAST chunk is held back until the digest is known: on a mismatch the response is cut
 * short (the client sees a truncated body, never the complete bad bytes) and the blob is marked bad for good.
 */
import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import type {ServerResponse} from 'node:http'
import {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {digestOfStream} from '../oci/digest.js'
import {PartedBytes} from '../bundle/parted-bytes.js'
import type {StoredContent} from './catalog.js'

/** Larger reads than the 64 KiB default: fewer syscalls and events per blob. */
const READ_CHUNK = 256 * 1024

export function openContent(content: StoredContent, range?: {start: number; end: number}): Readable {
  const start = content.entry.offset + (range?.start ?? 0)
  const end = content.entry.offset + (range ? range.end : content.size - 1)
  // createReadStream refuses end < start: an empty blob is an empty stream.
  if (end < start) return Readable.from([])
  // A bundle in parts reads through its byte source; one file keeps its direct read stream.
  if (content.reader.index.bytes instanceof PartedBytes) return content.reader.index.bytes.stream(start, end + 1, {highWaterMark: READ_CHUNK})
  return createReadStream(content.reader.path, {start, end, highWaterMark: READ_CHUNK})
}

/**
 * Chunk buffers shared by all responses. Under load the garbage of a fresh buffer per chunk, not live data, set the
 * peak RSS (64 clients: 130 MB on Node.js 20, over 300 MB on 24, whose collector lets external memory pile up
 * longer); reused buffers make it flat. At most POOL_MAX are kept between responses (64 MiB).
 */
const POOL_MAX = 256
const pool: Buffer[] = []
const takeBuffer = (): Buffer => pool.pop() ?? Buffer.allocUnsafe(READ_CHUNK)
const giveBuffer = (buffer: Buffer): void => {
  if (pool.length < POOL_MAX) pool.push(buffer)
}

/** Mark a blob whose bytes were all hashed: 'verified', or 'bad' and throw. */
function settle(content: StoredContent, hash: Hash): void {
  const actual = `sha256:${hash.digest('hex')}`
  content.state = actual === content.digest ? 'verified' : 'bad'
  if (content.state === 'bad') throw mismatch(content, actual)
}

function write(res: ServerResponse, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => res.write(data, (error) => (error ? reject(error) : resolve())))
}

/**
 * Send a blob (or a range of it) as the body of `res`, and end it: positional reads into two buffers, each refilled
 * only once its previous write has reached the socket, so a response holds 2 × 256 KiB whatever the blob's size.
 * Resolves with the bytes sent, and the error when the body was cut short (the caller destroys the connection).
 */
export async function sendContent(content: StoredContent, res: ServerResponse, range?: {start: number; end: number}): Promise<{bytes: number; error?: unknown}> {
  const first = content.entry.offset + (range?.start ?? 0)
  const length = range ? range.end - range.start + 1 : content.size
  const hash = content.state === 'unverified' && !range ? createHash('sha256') : undefined
  let sent = 0
  let handle
  const buffers = [takeBuffer(), takeBuffer()]
  const writes: Array<Promise<void> | undefined> = [undefined, undefined]
  let clean = false
  try {
    if (hash && length === 0) settle(content, hash) // an empty blob must hash like one too
    // One file: its own handle, as always; a bundle in parts: the byte source's reader, which reads across parts.
    handle = content.reader.index.bytes instanceof PartedBytes ? await content.reader.index.bytes.open() : await openFile(content.reader.path)
    for (let done = 0, turn = 0; done < length; turn++) {
      const slot = turn & 1
      await writes[slot] // its buffer is free again
      const buffer = buffers[slot]
      const bytesRead = await handle.readInto(buffer, Math.min(buffer.length, length - done), first + done)
      if (bytesRead === 0) throw new KubeferryError('IO', `${content.reader.path} ended inside blob ${content.digest}`, {hint: 'the bundle file changed or was truncated; run `kubeferry verify`'})
      const data = buffer.subarray(0, bytesRead)
      done += bytesRead
      hash?.update(data)
      if (hash && done === length) settle(content, hash) // before the last chunk goes out
      const written = write(res, data).then(() => {
        sent += data.length
      })
      written.catch(() => undefined) // awaited in turn; not unhandled meanwhile
      writes[slot] = written
    }
    await Promise.all(writes)
    clean = true
  } catch (error) {
    return {bytes: sent, error}
  } finally {
    await handle?.close().catch(() => undefined)
    // A buffer whose write failed may still be referenced below us: only buffers of a clean response go back.
    if (clean) buffers.forEach(giveBuffer)
  }
  res.end()
  return {bytes: sent}
}

/** The bundle file as a positional reader: the fs handle's own read, with no async wrapper around each call. */
async function openFile(path: string): Promise<{readInto(buffer: Buffer, length: number, position: number): Promise<number>; close(): Promise<void>}> {
  const handle = await open(path, 'r')
  return {readInto: (buffer, length, position) => handle.read(buffer, 0, length, position).then(bytesRead), close: () => handle.close()}
}

const bytesRead = (result: {bytesRead: number}): number => result.bytesRead

function mismatch(content: StoredContent, actual: string): KubeferryError {
  return new KubeferryError('DIGEST_MISMATCH', `blob ${content.digest} in ${content.reader.path} hashes to ${actual}; it is no longer served`, {
    hint: 'the bundle is corrupt; run `kubeferry verify` and copy it again',
  })
}

const pending = new WeakMap<StoredContent, Promise<void>>()

/** Hash a blob once (concurrent callers share the work); afterwards `content.state` is 'verified' or 'bad'. */
export async function ensureVerified(content: StoredContent): Promise<void> {
  if (content.state !== 'unverified') return
  let work = pending.get(content)
  if (!work) {
    work = (async () => {
      const {digest, size} = await digestOfStream(openContent(content) as AsyncIterable<Buffer>)
      content.state = digest === content.digest && size === content.size ? 'verified' : 'bad'
    })().finally(() => pending.delete(content))
    pending.set(content, work)
  }
  await work
}
