/**
 * Blob bytes out of a bundle, read by offset. A blob whose content has not been hashed yet (`--no-verify`) is hashed
 * while it streams, and the LAST chunk is held back until the digest is known: on a mismatch the response is cut
 * short (the client sees a truncated body, never the complete bad bytes) and the blob is marked bad for good.
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {Readable, Transform, type TransformCallback} from 'node:stream'
import {KubeferryError} from '../errors.js'
import type {StoredContent} from './catalog.js'

/** Larger reads than the 64 KiB default: fewer syscalls and events per blob (RSS under load is GC-bound, not this). */
const READ_CHUNK = 256 * 1024

export function openContent(content: StoredContent, range?: {start: number; end: number}): Readable {
  const start = content.entry.offset + (range?.start ?? 0)
  const end = content.entry.offset + (range ? range.end : content.size - 1)
  // createReadStream refuses end < start: an empty blob is an empty stream.
  if (end < start) return Readable.from([])
  return createReadStream(content.reader.path, {start, end, highWaterMark: READ_CHUNK})
}

/** Hashes everything, passes everything but the last chunk until the digest checks out. */
export class HoldLastChunkVerifier extends Transform {
  private readonly hash = createHash('sha256')
  private held: Buffer | undefined
  private count = 0

  constructor(private readonly content: StoredContent) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    this.count += chunk.length
    const previous = this.held
    this.held = chunk
    callback(null, previous)
  }

  override _flush(callback: TransformCallback): void {
    const actual = `sha256:${this.hash.digest('hex')}`
    if (actual !== this.content.digest || this.count !== this.content.size) {
      this.content.state = 'bad'
      callback(mismatch(this.content, actual))
      return
    }
    this.content.state = 'verified'
    if (this.held) this.push(this.held)
    callback()
  }
}

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
      const hash = createHash('sha256')
      let count = 0
      for await (const chunk of openContent(content) as AsyncIterable<Buffer>) {
        hash.update(chunk)
        count += chunk.length
      }
      const actual = `sha256:${hash.digest('hex')}`
      content.state = actual === content.digest && count === content.size ? 'verified' : 'bad'
    })().finally(() => pending.delete(content))
    pending.set(content, work)
  }
  await work
}
