/**
 * Step 2, check: what the registry already has. One HEAD per destination name, all at once, while the bundle's
 * manifests are read and the gate (the bundle's verification), if any, runs: nothing is written before all three
 * are done. Each name then gets its status: present (the tag already points at the bundle's digest, or at the
 * filtered index where that is acceptable), conflict (another digest), or to push.
 */
import type {BundleSource} from '../../bundle/source.js'
import {KubeferryError} from '../../oci/errors.js'
import type {Digest} from '../../oci/digest.js'
import type {Reference} from '../../oci/reference.js'
import {readSourceImage, type NamedImage, type SourceImage} from '../push-source.js'
import type {Limiter} from '../../util/limiter.js'
import type {Place} from './plan.js'
import type {PlatformPolicy, PushRegistry, TargetStatus} from './types.js'

type Head = Awaited<ReturnType<PushRegistry['headManifest']>>

/** A destination name with its image read and what the registry has under it. */
export interface Target {
  image: SourceImage
  repository: string
  alias: boolean
  ref: Reference
  reference: string
  /** Digests the name may point at to count as present: the bundle's, and its filtered index unless `sparse`. */
  acceptable: Set<string>
  /** What the name pointed at before this push. */
  existing?: Digest
  /** Known before writing: present, conflict, would-overwrite; undefined = to push. */
  status?: TargetStatus
}

export interface Checked {
  images: SourceImage[]
  heads: Head[]
}

/** Read every image's manifests and HEAD every place, alongside the gate; the first failure is thrown (the gate's first). */
export async function checkRegistry(source: BundleSource, registry: PushRegistry, named: NamedImage[], places: Place[], gate: Promise<unknown>, requests: Limiter): Promise<Checked> {
  const [checked, read, asked] = await Promise.allSettled([
    gate,
    Promise.all(named.map((image) => readSourceImage(source.reader, image, source))),
    Promise.all(places.map((place) => requests.run(() => registry.headManifest(place.ref)))),
  ])
  for (const settled of [checked, read, asked]) if (settled.status === 'rejected') throw settled.reason
  return {images: (read as PromiseFulfilledResult<SourceImage[]>).value, heads: (asked as PromiseFulfilledResult<Head[]>).value}
}

/** Each place as a target with its status. */
export function classifyTargets(places: Place[], checked: Checked, policy: PlatformPolicy, options: {overwrite?: boolean; dryRun?: boolean}): Target[] {
  return places.map((place, k) => {
    const image = checked.images[place.index]
    const acceptable = new Set<string>([image.root.raw.digest])
    if (image.root.filtered && policy !== 'sparse') acceptable.add(image.root.filtered.digest)
    const t: Target = {image, repository: place.repository, alias: place.alias, ref: place.ref, reference: place.reference, acceptable}
    const head = checked.heads[k]
    if (head) {
      t.existing = head.digest
      if (acceptable.has(head.digest)) t.status = 'present'
      else t.status = options.overwrite ? (options.dryRun ? 'would-overwrite' : undefined) : 'conflict'
    }
    return t
  })
}

/** A tag that points at another digest stops the push before anything is written (unless --overwrite). */
export function refuseConflicts(conflicts: Target[]): void {
  if (conflicts.length === 0) return
  const first = conflicts[0]
  throw new KubeferryError('CONFLICT', `${first.reference} already exists with digest ${first.existing}, the bundle has ${first.image.root.raw.digest}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more name(s))` : ''}; nothing was pushed`, {
    hint: 'push under another prefix, or replace those tags with --overwrite',
  })
}
