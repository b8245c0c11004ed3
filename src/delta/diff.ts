/**
 * `kubeferry diff OLD NEW`: which images an upgrade changes, which blobs it brings, and how many bytes it carries as
 * a delta bundle (`create --base OLD`: every manifest, index and config, plus the layers OLD does not hold) against a
 * full bundle of NEW. Images are paired by name, then by repository when one tag replaced another
 * (kube-apiserver:v1.31.0 → v1.31.6).
 */
import {isLayerMediaType} from '../bundle/delta.js'
import type {Digest} from '../oci/digest.js'
import {uniqueBlobs} from '../bundle/image-blobs.js'
import type {BundleImage} from '../bundle/layout.js'
import type {DiffSide} from './diff-side.js'

export interface Tally {
  count: number
  bytes: number
}

export interface ImageChange {
  /** The NEW name, or the OLD one for a removed image. */
  name: string
  change: 'added' | 'removed' | 'changed' | 'unchanged'
  old?: {name: string; digest: string}
  new?: {name: string; digest: string}
  /** Bytes of this image's blobs that OLD does not hold (a blob two images share counts for both). */
  newBytes: number
}

export interface DiffReport {
  old: {label: string; kind: string; images: number; blobs: Tally}
  new: {label: string; kind: string; images: number; blobs: Tally}
  images: ImageChange[]
  blobs: {
    /** In NEW, not in OLD. */
    added: Tally
    /** In both. */
    shared: Tally
    /** In OLD, no longer used by NEW. */
    dropped: Tally
  }
  /** What an upgrade carries: a delta bundle's blobs and a full bundle's (tar headers and metadata aside). */
  carry: {delta: number; full: number; saved: number}
}

function tally(blobs: Iterable<{size: number}>): Tally {
  let count = 0
  let bytes = 0
  for (const b of blobs) {
    count++
    bytes += b.size
  }
  return {count, bytes}
}

const repositoryOf = (image: BundleImage): string => `${image.registry}/${image.repository}`

/** OLD and NEW images paired: same name first, then one unpaired image each side of a repository. */
function pair(olds: BundleImage[], news: BundleImage[]): Array<{old?: BundleImage; new?: BundleImage}> {
  const byName = new Map(olds.map((i) => [i.name, i]))
  const pairs: Array<{old?: BundleImage; new?: BundleImage}> = []
  const unpairedNew: BundleImage[] = []
  for (const image of news) {
    const old = byName.get(image.name)
    if (old) {
      pairs.push({old, new: image})
      byName.delete(image.name)
    } else unpairedNew.push(image)
  }
  const leftOld = [...byName.values()]
  for (const image of unpairedNew) {
    const sameRepo = (list: BundleImage[]): BundleImage[] => list.filter((i) => repositoryOf(i) === repositoryOf(image))
    const candidates = sameRepo(leftOld)
    if (candidates.length === 1 && sameRepo(unpairedNew).length === 1) {
      pairs.push({old: candidates[0], new: image})
      leftOld.splice(leftOld.indexOf(candidates[0]), 1)
    } else pairs.push({new: image})
  }
  for (const old of leftOld) pairs.push({old})
  return pairs
}

export function diffSides(old: DiffSide, next: DiffSide): DiffReport {
  const oldBlobs = uniqueBlobs(old.images)
  const newBlobs = uniqueBlobs(next.images)
  const notInOld = (digest: Digest): boolean => !oldBlobs.has(digest)
  const images: ImageChange[] = pair(old.images, next.images).map((p) => {
    const newBytes = p.new ? [...uniqueBlobs([p.new])].filter(([d]) => notInOld(d)).reduce((sum, [, b]) => sum + b.size, 0) : 0
    const change = !p.old ? 'added' : !p.new ? 'removed' : p.old.digest === p.new.digest && p.old.name === p.new.name ? 'unchanged' : 'changed'
    return {
      name: (p.new ?? p.old)!.name,
      change,
      ...(p.old ? {old: {name: p.old.name, digest: p.old.digest}} : {}),
      ...(p.new ? {new: {name: p.new.name, digest: p.new.digest}} : {}),
      newBytes,
    }
  })
  const added = [...newBlobs].filter(([d]) => notInOld(d)).map(([, b]) => b)
  const shared = [...newBlobs].filter(([d]) => oldBlobs.has(d)).map(([, b]) => b)
  const dropped = [...oldBlobs].filter(([d]) => !newBlobs.has(d)).map(([, b]) => b)
  const full = tally(newBlobs.values()).bytes
  // A delta leaves out only layers OLD holds: manifests, indexes and configs always travel.
  const delta = [...newBlobs].filter(([d, b]) => notInOld(d) || !isLayerMediaType(b.mediaType)).reduce((sum, [, b]) => sum + b.size, 0)
  return {
    old: {label: old.label, kind: old.kind, images: old.images.length, blobs: tally(oldBlobs.values())},
    new: {label: next.label, kind: next.kind, images: next.images.length, blobs: tally(newBlobs.values())},
    images,
    blobs: {added: tally(added), shared: tally(shared), dropped: tally(dropped)},
    carry: {delta, full, saved: full - delta},
  }
}
