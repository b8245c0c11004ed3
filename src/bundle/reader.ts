/**
 * Read a bundle by random access: small JSON files with a size cap, blobs as verified streams.
 * Serve, push, load, verify and inspect all read bundles through this.
 */
import {createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {KubeferryError} from '../errors.js'
import {DigestVerifier, isDigest, type Digest} from '../oci/digest.js'
import type {BlobSource, Descriptor} from '../oci/types.js'
import {indexTar, type TarEntry, type TarIndex} from './tar-index.js'
import {blobPath, METADATA_FILE, type BundleMetadata} from './layout.js'

/** Largest JSON document (index, manifest, config, metadata) we parse; bigger ones are refused, not read. */
export const MAX_JSON_BYTES = 8 * 1024 * 1024

export class BundleReader implements BlobSource {
  private constructor(readonly index: TarIndex) {}

  static async open(path: string): Promise<BundleReader> {
    return new BundleReader(await indexTar(path))
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
    const handle = await open(this.path, 'r')
    try {
      const buffer = Buffer.alloc(entry.size)
      const {bytesRead} = await handle.read(buffer, 0, entry.size, entry.offset)
      if (bytesRead !== entry.size) throw this.missing(name)
      return buffer
    } finally {
      await handle.close()
    }
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
  openEntry(entry: TarEntry, range?: {start: number; end: number}): Readable {
    // createReadStream cannot express an empty range (end < start), so an empty entry is an empty stream.
    if (entry.size === 0 || (range && range.end < range.start)) return Readable.from([])
    const start = entry.offset + (range?.start ?? 0)
    const end = entry.offset + (range ? range.end : entry.size - 1)
    return createReadStream(this.path, {start, end})
  }

  /** A blob stream verified against its digest (and size when given) while it flows. */
  async openBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<NodeJS.ReadableStream> {
    if (!isDigest(descriptor.digest)) throw new KubeferryError('BUNDLE_INVALID', `invalid digest ${String(descriptor.digest)}`)
    const entry = this.blobEntry(descriptor.digest)
    if (!entry) throw this.missing(blobPath(descriptor.digest))
    if (descriptor.size !== undefined && entry.size !== descriptor.size) {
      throw new KubeferryError('SIZE_MISMATCH', `${this.path}: blob ${descriptor.digest} is ${entry.size} bytes, its descriptor says ${descriptor.size}`, {hint: 'the bundle is corrupt; run `kubeferry verify`'})
    }
    const verifier = new DigestVerifier(descriptor.digest, entry.size, {label: `blob ${descriptor.digest} in ${this.path}`})
    const raw = this.openEntry(entry)
    raw.on('error', (error) => verifier.destroy(error))
    return raw.pipe(verifier)
  }
}
