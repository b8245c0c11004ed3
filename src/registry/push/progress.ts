/** What the push will move, and how far it is: per image and overall, each blob counted once. */
import type {Digest} from '../../oci/digest.js'
import type {ManifestNode, SourceImage} from '../push-source.js'
import type {Target} from './check.js'
import type {Blob, Emit, PlannedImage} from './types.js'

export function leafBlobs(node: ManifestNode): Blob[] {
  return node.kind === 'manifest' ? node.blobs : node.children.flatMap(leafBlobs)
}

/** The images with names to push, the bytes of each one's blobs (each once), and of all of them (each blob once). */
export function plannedImages(list: Target[]): {pushing: PlannedImage[]; bytes: number} {
  const byImage = new Map<SourceImage, PlannedImage>()
  const all = new Map<Digest, number>()
  for (const t of list) {
    let planned = byImage.get(t.image)
    if (!planned) {
      const own = new Map(leafBlobs(t.image.root).map((b) => [b.digest, b.size]))
      for (const [digest, size] of own) all.set(digest, size)
      planned = {source: t.image.name, bytes: [...own.values()].reduce((a, b) => a + b, 0), references: []}
      byImage.set(t.image, planned)
    }
    planned.references.push(t.reference)
  }
  return {pushing: [...byImage.values()], bytes: [...all.values()].reduce((a, b) => a + b, 0)}
}

export interface BlobProgress {
  /** Count these images' blobs for them from now on (each image once; before its bytes flow). */
  add(images: Iterable<SourceImage>): void
  /** The current try of a blob's upload has streamed `bytes` (a retry starts again from 0). */
  streamed(blob: Blob, bytes: number): void
  /** The blob is in place (uploaded, mounted or found present). */
  placed(blob: Blob): void
}

/**
 * Progress per image and overall: how far each blob is (bytes streamed by the current try, or all of it once it is
 * in place), turned into `bytes` events for every image that uses it. A blob in place stays counted. Images are
 * added as the sink learns of them (all at once when a bundle is pushed).
 */
export function blobProgress(emit: Emit): BlobProgress {
  const users = new Map<Digest, string[]>()
  const added = new Set<SourceImage>()
  const level = new Map<Digest, number>()
  const complete = new Set<Digest>()
  const advance = (digest: Digest, value: number): void => {
    const delta = value - (level.get(digest) ?? 0)
    if (delta === 0) return
    level.set(digest, value)
    emit({type: 'bytes', bytes: delta})
    for (const source of users.get(digest) ?? []) emit({type: 'bytes', source, bytes: delta})
  }
  return {
    add(images) {
      for (const image of images) {
        if (added.has(image)) continue
        added.add(image)
        for (const digest of new Set(leafBlobs(image.root).map((b) => b.digest))) {
          const names = users.get(digest) ?? []
          names.push(image.name)
          users.set(digest, names)
        }
      }
    },
    streamed(blob, bytes) {
      if (!complete.has(blob.digest)) advance(blob.digest, Math.min(bytes, blob.size))
    },
    placed(blob) {
      if (complete.has(blob.digest)) return
      complete.add(blob.digest)
      advance(blob.digest, blob.size)
    },
  }
}
