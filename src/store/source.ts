/**
 * The blob cache as an ImageSource: blobs by digest, verified while they flow; manifests by digest when a build kept
 * them (create puts every manifest it planned into the store), else undefined. The cache knows no names: a reference
 * only says which repository a registry would have served it from, so `manifest(ref)` without a digest answers only a
 * digest reference. With the root descriptor of an image (a lockfile's digest, a bundle.json) the walker reads a
 * whole tree from here, and any sink can take it: a registry → cache → registry copy needs no registry on the way in.
 */
import {createReadStream, readFileSync, statSync} from 'node:fs'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {isDigest, sha256Digest, type Digest} from '../oci/digest.js'
import {MAX_MANIFEST_BYTES, ownMediaType} from '../oci/manifest.js'
import type {Reference} from '../oci/reference.js'
import type {BlobReadOptions, ImageSource} from '../oci/source.js'
import type {Descriptor, RawManifest} from '../oci/types.js'
import type {BlobStore} from './blob-store.js'

export class StoreSource implements ImageSource {
  constructor(readonly store: BlobStore) {}

  get label(): string {
    return `cache ${this.store.root}`
  }

  /**
   * The manifest with `digest` (or `ref`'s own digest) when the cache holds it whole and its bytes hash to that
   * digest. A damaged entry is removed and reported absent, so the next build fetches it again.
   */
  async manifest(ref: Reference, digest?: Digest): Promise<RawManifest | undefined> {
    const wanted = digest ?? ref.digest
    if (!wanted || !isDigest(wanted)) return undefined
    const size = this.blobSize(wanted)
    if (size === undefined || size > MAX_MANIFEST_BYTES) return undefined
    let bytes: Buffer
    try {
      bytes = readFileSync(this.store.pathOf(wanted))
    } catch {
      return undefined // removed meanwhile (another build dropped a damaged entry)
    }
    if (sha256Digest(bytes) !== wanted) {
      await this.store.remove(wanted)
      return undefined
    }
    return {bytes, digest: wanted, mediaType: ownMediaType(bytes)}
  }

  /** From 0: verified (digest and size) while it flows. From an offset: the rest, unverified (the caller holds the prefix). */
  async blob(_ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, options: BlobReadOptions = {}): Promise<Readable> {
    options.signal?.throwIfAborted()
    if (!isDigest(desc.digest) || !(await this.store.has(desc))) {
      throw new KubeferryError('NOT_FOUND', `blob ${desc.digest} is not in the cache ${this.store.root}`, {hint: 'run `kubeferry create` again to fetch it'})
    }
    const offset = options.offset ?? 0
    const common = {...(options.highWaterMark ? {highWaterMark: options.highWaterMark} : {}), ...(options.signal ? {signal: options.signal} : {})}
    // A resume request is answered from 0 (no `startsAt`): the whole blob is local and cheap to read again.
    if (offset === 0) return this.store.open(desc, {...common, ...(options.onBytes ? {onBytes: options.onBytes} : {})})
    const stream = createReadStream(this.store.pathOf(desc.digest), {...common, start: offset})
    const onBytes = options.onBytes
    if (onBytes) stream.on('data', (chunk) => onBytes((chunk as Buffer).length))
    return stream
  }

  blobSize(digest: Digest): number | undefined {
    if (!isDigest(digest)) return undefined
    const info = statSync(this.store.pathOf(digest), {throwIfNoEntry: false})
    return info?.isFile() ? info.size : undefined
  }
}
