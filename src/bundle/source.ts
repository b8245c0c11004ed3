/**
 * A bundle as an ImageSource: manifests and blobs by digest from its tar (through BundleReader, so through its byte
 * source), images by name from index.json. Push, serve and verify walk a bundle's trees through this.
 */
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {isDigest, type Digest} from '../oci/digest.js'
import {MAX_MANIFEST_BYTES, ownMediaType} from '../oci/manifest.js'
import {formatReference, type Reference} from '../oci/reference.js'
import type {BlobReadOptions, ImageSource} from '../oci/source.js'
import type {Descriptor, ImageIndex, RawManifest} from '../oci/types.js'
import type {WalkSource} from '../oci/walk.js'
import {ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, INDEX_FILE} from './layout.js'
import type {BundleReader} from './reader.js'

export class BundleSource implements ImageSource {
  private named: Promise<Array<{name: string; desc: Descriptor}>> | undefined

  /** `relied`: a delta bundle's relied-on blobs (contract.ts reliedOn): the walk counts them as held elsewhere. */
  constructor(
    readonly reader: BundleReader,
    private readonly relied: ReadonlyMap<Digest, number> = new Map(),
  ) {}

  get label(): string {
    return this.reader.path
  }

  /**
   * Manifest bytes by digest, at most MAX_MANIFEST_BYTES + 1 of them whatever the tar says (the walker refuses the
   * oversized one without the rest ever being read). Undefined when the bundle does not hold it.
   */
  async manifestBytes(digest: Digest): Promise<Buffer | undefined> {
    return this.blobPrefix(digest, MAX_MANIFEST_BYTES + 1)
  }

  /** At most `max` bytes from the start of a blob (unverified); undefined when the bundle does not hold it. */
  async blobPrefix(digest: Digest, max: number): Promise<Buffer | undefined> {
    if (!isDigest(digest)) return undefined
    const entry = this.reader.blobEntry(digest)
    if (!entry) return undefined
    return this.reader.readPrefix(entry, max)
  }

  async manifest(ref: Reference, digest?: Digest): Promise<RawManifest | undefined> {
    const wanted = digest ?? ref.digest ?? (await this.byName()).get(formatReference({...ref, digest: undefined}))?.digest
    if (!wanted) return undefined
    const bytes = await this.manifestBytes(wanted)
    return bytes && {bytes, digest: wanted, mediaType: ownMediaType(bytes)}
  }

  async blob(_ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, options: BlobReadOptions = {}): Promise<Readable> {
    const offset = options.offset ?? 0
    if (offset === 0) return (await this.reader.openBlob(desc, options)) as Readable
    // From an offset the caller holds the prefix and finishes the digest check.
    const entry = isDigest(desc.digest) ? this.reader.blobEntry(desc.digest) : undefined
    if (!entry) throw new KubeferryError('BUNDLE_INVALID', `${this.label}: blob ${desc.digest} is missing from the bundle`, {hint: 'the bundle is incomplete; run `kubeferry verify` and rebuild it'})
    const stream = this.reader.openEntry(entry, {start: offset, end: entry.size - 1}, options)
    const onBytes = options.onBytes
    if (onBytes) stream.on('data', (chunk: Buffer) => onBytes(chunk.length))
    return stream
  }

  blobSize(digest: Digest): number | undefined {
    return isDigest(digest) ? (this.reader.blobEntry(digest)?.size ?? this.relied.get(digest)) : undefined
  }

  /** The walker's view: manifests by descriptor, blob sizes from the tar index. */
  walkSource(): WalkSource {
    return {readManifest: (desc) => this.manifestBytes(desc.digest), blobSize: (digest) => this.blobSize(digest)}
  }

  /**
   * index.json's named images in its order, first descriptor per name: the name is containerd's annotation, else a
   * fully qualified OCI ref name (one with a `/`; a bare tag names nothing). Entries without a name are left out.
   */
  images(): Promise<Array<{name: string; desc: Descriptor}>> {
    this.named ??= this.reader.readJson<ImageIndex>(INDEX_FILE).then((index) => {
      if (!Array.isArray(index?.manifests)) {
        throw new KubeferryError('BUNDLE_INVALID', `${this.label}: ${INDEX_FILE} has no manifests list`, {hint: 'run `kubeferry verify` on the bundle and rebuild or copy it again'})
      }
      const names = new Map<string, Descriptor>()
      for (const desc of index.manifests) {
        const a = desc?.annotations ?? {}
        const name = a[ANNOTATION_CONTAINERD_NAME] ?? (a[ANNOTATION_REF_NAME]?.includes('/') ? a[ANNOTATION_REF_NAME] : undefined)
        if (name && !names.has(name)) names.set(name, desc)
      }
      return [...names].map(([name, desc]) => ({name, desc}))
    })
    return this.named
  }

  private async byName(): Promise<Map<string, Descriptor>> {
    return new Map((await this.images()).map((i) => [i.name, i.desc]))
  }
}
