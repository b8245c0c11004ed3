import {createHash, type Hash} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'
import {KubeferryError} from './errors.js'
import {streamed} from './gc-pacer.js'

/** `sha256:<64 lowercase hex>`; the only algorithm kubeferry accepts. */
export type Digest = `sha256:${string}`

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value)
}

export function parseDigest(value: string, what = 'digest'): Digest {
  if (!isDigest(value)) {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid ${what} "${value}": expected sha256: followed by 64 lowercase hex characters`)
  }
  return value
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length)
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

/** The sha256 and length of everything a stream yields, read to its end; `onChunk` sees each chunk's length. */
export async function digestOfStream(stream: AsyncIterable<Buffer>, onChunk?: (bytes: number) => void): Promise<{digest: Digest; size: number}> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of stream) {
    hash.update(chunk)
    streamed(chunk.length)
    size += chunk.length
    onChunk?.(chunk.length)
  }
  return {digest: `sha256:${hash.digest('hex')}`, size}
}

/**
 * A pass-through stream that hashes and counts bytes as they flow and fails the pipeline (before the
 * final flush) when the digest or size differs from what was expected. `offset`/`prefix` let a resumed
 * download continue a hash started earlier.
 */
export class DigestVerifier extends Transform {
  readonly expected: Digest
  readonly expectedSize: number | undefined
  private readonly hash: Hash
  private count: number
  private readonly label: string
  /** Where its first byte is in the blob: `offset` when it continues a kept prefix (its hash given), else 0. */
  readonly startsAt: number

  constructor(expected: Digest, expectedSize?: number, options: {label?: string; hash?: Hash; offset?: number; highWaterMark?: number} = {}) {
    super(options.highWaterMark ? {highWaterMark: options.highWaterMark} : {})
    this.expected = expected
    this.expectedSize = expectedSize
    this.hash = options.hash ?? createHash('sha256')
    this.count = options.offset ?? 0
    this.startsAt = this.count
    this.label = options.label ?? expected
  }

  get bytes(): number {
    return this.count
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length
    if (this.expectedSize !== undefined && this.count > this.expectedSize) {
      callback(new KubeferryError('SIZE_MISMATCH', `${this.label}: more than the expected ${this.expectedSize} bytes received`, {hint: 'the source is corrupt or was tampered with; try again or use another mirror'}))
      return
    }
    this.hash.update(chunk)
    streamed(chunk.length)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.count !== this.expectedSize) {
      callback(new KubeferryError('SIZE_MISMATCH', `${this.label}: expected ${this.expectedSize} bytes, got ${this.count}`, {hint: 'the transfer was truncated or the source is corrupt; try again'}))
      return
    }
    const actual = `sha256:${this.hash.digest('hex')}`
    if (actual !== this.expected) {
      callback(new KubeferryError('DIGEST_MISMATCH', `${this.label}: content digest is ${actual}, expected ${this.expected}`, {hint: 'the bytes are corrupt or were tampered with; nothing was kept'}))
      return
    }
    callback()
  }
}
