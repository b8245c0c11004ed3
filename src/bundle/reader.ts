/**
 * Read a bundle by random access: small JSON files with a size cap, blobs as verified streams.
 * Serve, push, load, verify and inspect all read bundles through this, and this reads only through the tar index's
 * byte source (byte-source.ts), so a bundle in several parts needs no change here.
 */
import {stat} from 'node:fs/promises'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {DigestVerifier, isDigest, type Digest} from '../oci/digest.js'
import type {Descriptor} from '../oci/types.js'
import {indexTar, type TarEntry, type TarIndex} from './tar-index.js'
import {isPartedPath} from './parts.js'
import {blobPath, METADATA_FILE, type BundleMetadata} from './layout.js'

/** Largest JSON document (index, manifest, config, metadata) we parse; bigger ones are refused, not read. */
export const MAX_JSON_BYTES = 8 * 1024 * 1024

/** Options for blob and entry streams. */
export interface StreamOptions {
  /** Read size (default: Node's 64 KiB). Bulk copies (push) read 1 MiB at a time: fewer reads, chunks and writes. */
  highWaterMark?: number
  /** Called with each chunk's length as it is read (progress). */
  onBytes?: (bytes: number) => void
}

/** The last index built, reused by the next open of the same unchanged file (verify then open: one pass, not two). */
let lastIndex: {path: string; stamp: string; index: TarIndex} | undefined

async function fileStamp(path: string): Promise<string | undefined> {
  // A bundle in parts is indexed on each open: one file's stamp would not see another part replaced.
  if (isPartedPath(path)) return undefined
  try {
    const s = await stat(path, {bigint: true})
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch {
    return undefined // indexTar reports the error
  }
}

export class BundleReader {
  private constructor(readonly index: TarIndex) {}

  /**
   * Index the bundle. Opening the same file again while it is unchanged (same device, inode, size, mtime and ctime
   * to the nanosecond) reuses the index already built, so a command that verifies and then reads a bundle indexes it
   * once. The index is immutable, so sharing it is safe.
   */
  static async open(path: string): Promise<BundleReader> {
    const stamp = await fileStamp(path)
    if (stamp !== undefined && lastIndex?.path === path && lastIndex.stamp === stamp) return new BundleReader(lastIndex.index)
    const index = await indexTar(path)
    if (stamp !== undefined && (await fileStamp(path)) === stamp) lastIndex = {path, stamp, index}
    return new BundleReader(index)
  }

  get path(): string {
    return this.index.path
  }

  has(name: string): boolean {
    return this.index.entries.has(name)
  }

  entry(name: string): TarEntry | undefined {
    return this.index.entries.get(name)
  }

  blobEntry(digest: Digest): TarEntry | undefined {
    return this.index.entries.get(blobPath(digest))
  }

  private missing(name: string): KubeferryError {
    return new KubeferryError('BUNDLE_INVALID', `${this.path}: "${name}" is missing from the bundle`, {hint: 'the bundle is incomplete; run `kubeferry verify` and rebuild it'})
  }

  /** Read a small file whole (refusing anything over maxBytes). */
  async readFile(name: string, maxBytes = MAX_JSON_BYTES): Promise<Buffer> {
    const entry = this.index.entries.get(name)
    if (!entry) throw this.missing(name)
    if (entry.size > maxBytes) {
      throw new KubeferryError('BUNDLE_INVALID', `${this.path}: "${name}" is ${entry.size} bytes, more than the ${maxBytes} allowed for a metadata file`, {hint: 'the bundle was tampered with or is not a kubeferry bundle'})
    }
    const buffer = await this.index.bytes.read(entry.offset, entry.size)
    if (buffer.length !== entry.size) throw this.missing(name)
    return buffer
  }

  /** The first `length` bytes of an entry at most (a manifest read under a size bound, whatever the tar claims). */
  async readPrefix(entry: TarEntry, length: number): Promise<Buffer> {
    return this.index.bytes.read(entry.offset, Math.min(entry.size, length))
  }

  async readJson<T>(name: string, maxBytes = MAX_JSON_BYTES): Promise<T> {
    const bytes = await this.readFile(name, maxBytes)
    try {
      return JSON.parse(bytes.toString('utf8')) as T
    } catch {
      throw new KubeferryError('BUNDLE_INVALID', `${this.path}: "${name}" is not valid JSON`, {hint: 'the bundle is corrupt; copy it again'})
    }
  }

  async metadata(): Promise<BundleMetadata> {
    return this.readJson<BundleMetadata>(METADATA_FILE)
  }

  /** Raw stream of an entry's bytes (unverified), optionally a byte range [start, end] inclusive within the entry. */
  openEntry(entry: TarEntry, range?: {start: number; end: number}, options: Pick<StreamOptions, 'highWaterMark'> = {}): Readable {
    const start = entry.offset + (range?.start ?? 0)
    const end = entry.offset + (range ? range.end + 1 : entry.size)
    return this.index.bytes.stream(start, Math.max(start, end), options)
  }

  /** A blob stream verified against its digest (and size when given) while it flows. */
  async openBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>, options: StreamOptions = {}): Promise<NodeJS.ReadableStream> {
    if (!isDigest(descriptor.digest)) throw new KubeferryError('BUNDLE_INVALID', `invalid digest ${String(descriptor.digest)}`)
    const entry = this.blobEntry(descriptor.digest)
    if (!entry) throw this.missing(blobPath(descriptor.digest))
    if (descriptor.size !== undefined && entry.size !== descriptor.size) {
      throw new KubeferryError('SIZE_MISMATCH', `${this.path}: blob ${descriptor.digest} is ${entry.size} bytes, its descriptor says ${descriptor.size}`, {hint: 'the bundle is corrupt; run `kubeferry verify`'})
    }
    const verifier = new DigestVerifier(descriptor.digest, entry.size, {label: `blob ${descriptor.digest} in ${this.path}`})
    const raw = this.openEntry(entry, undefined, {highWaterMark: options.highWaterMark})
    raw.on('error', (error) => verifier.destroy(error))
    const out = raw.pipe(verifier)
    const onBytes = options.onBytes
    // Observing a piped (flowing) stream takes nothing from its consumer.
    if (onBytes) raw.on('data', (chunk: Buffer) => onBytes(chunk.length))
    return out
  }
}
