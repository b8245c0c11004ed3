/**
 * Step 3, blobs: put each blob a manifest needs into its repository, once per repository. In order of cost: where
 * this run already placed it in another repository, a cross-repository mount; else a HEAD (already there); else a
 * streamed upload from the image's source (a bundle, a registry, the cache), verified (digest and size) as it reads,
 * so a corrupt blob is never committed.
 */
import type {Digest} from '../../oci/digest.js'
import type {Reference} from '../../oci/reference.js'
import type {ImageSource} from '../../oci/source.js'
import type {WritePools} from './pools.js'
import type {BlobProgress} from './progress.js'
import type {Blob, Emit, PushCounts, PushRegistry} from './types.js'

/** Where a blob's bytes come from: the source of the image that needs it, and that image's reference there. */
export interface BlobOrigin {
  source: ImageSource
  ref: Reference
  signal?: AbortSignal
}

/** Read size for blobs streamed out of the bundle: fewer reads, chunks and socket writes than the 64 KiB default. */
const UPLOAD_READ_BYTES = 1024 * 1024

export interface BlobContext {
  registry: PushRegistry
  /** The destination registry host. */
  registryHost: string
  pools: WritePools
  progress: BlobProgress
  counts: PushCounts
  emit: Emit
}

export class BlobPlacer {
  /** Where each blob is (or is being put) in this registry: the repository to mount it from. */
  private readonly homes = new Map<Digest, Promise<string | undefined>>()
  /** One placement per repository and blob, shared by every manifest that needs it. */
  private readonly placed = new Map<string, Promise<void>>()

  constructor(private readonly ctx: BlobContext) {}

  /** Put `blob` into `repository` (once, whoever asks); read from `from` if it must be uploaded. */
  ensure(repository: string, blob: Blob, from: BlobOrigin): Promise<void> {
    const key = `${repository}@${blob.digest}`
    let p = this.placed.get(key)
    if (!p) {
      p = this.place(repository, blob, from)
      this.placed.set(key, p)
    }
    return p
  }

  private async place(repository: string, blob: Blob, from: BlobOrigin): Promise<void> {
    const {registry, pools, counts, emit, progress} = this.ctx
    const repo: Reference = {registry: this.ctx.registryHost, repository}
    const claimed = this.homes.get(blob.digest)
    if (claimed) {
      const home = await claimed.catch(() => undefined)
      if (home !== undefined && home !== repository) {
        if (await pools.request(blob.size, () => registry.mountBlob(repo, blob.digest, home))) {
          counts.blobs.mounted++
          emit({type: 'blob', digest: blob.digest, repository, action: 'mounted', size: blob.size})
          progress.placed(blob)
          return
        }
      } else if (home === repository) {
        return
      }
    }
    const claim = (async () => {
      if (await pools.request(blob.size, () => registry.blobExists(repo, blob.digest))) {
        counts.blobs.present++
        emit({type: 'blob', digest: blob.digest, repository, action: 'present', size: blob.size})
        progress.placed(blob)
        return repository
      }
      await pools.upload(blob.size, () => this.upload(repo, blob, from))
      counts.blobs.uploaded++
      counts.blobs.bytesUploaded += blob.size
      emit({type: 'blob', digest: blob.digest, repository, action: 'uploaded', size: blob.size})
      progress.placed(blob)
      return repository
    })()
    if (!claimed) this.homes.set(blob.digest, claim)
    await claim
  }

  private upload(repo: Reference, blob: Blob, from: BlobOrigin): Promise<void> {
    const {registry, progress} = this.ctx
    return registry.uploadBlob(repo, blob, async () => {
      // Each try (a retry reopens the stream) counts from zero again.
      let streamed = 0
      progress.streamed(blob, 0)
      const onBytes = (n: number): void => {
        streamed += n
        progress.streamed(blob, streamed)
      }
      // Verified (digest and size) as it streams: a corrupt blob fails its upload and is never committed.
      return from.source.blob(from.ref, blob, {highWaterMark: UPLOAD_READ_BYTES, onBytes, ...(from.signal ? {signal: from.signal} : {})})
    })
  }
}
