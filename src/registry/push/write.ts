/**
 * Steps 3 to 5 for every name at once: each target's tree is pushed (blobs, child manifests, root under its tag),
 * sharing blob placements across targets. A manifest is PUT as soon as its own children are in place. Events say
 * when a name, and when every name of an image, is done; the first failure stops the rest and is reported with
 * how far the push got.
 */
import type {BundleReader} from '../../bundle/reader.js'
import type {PushDestination} from '../rename.js'
import type {SourceImage} from '../push-source.js'
import {BlobPlacer} from './blobs.js'
import type {Target} from './check.js'
import {pushImage} from './manifests.js'
import type {WritePools} from './pools.js'
import {blobProgress} from './progress.js'
import {incompleteError, type Results} from './report.js'
import type {Emit, PlatformPolicy, PushCounts, PushRegistry} from './types.js'

export interface WriteContext {
  reader: BundleReader
  registry: PushRegistry
  destination: PushDestination
  policy: PlatformPolicy
  pools: WritePools
  counts: PushCounts
  results: Results
  emit: Emit
}

export async function pushTargets(ctx: WriteContext, list: Target[]): Promise<void> {
  const {registry, pools, counts, emit, results} = ctx
  const registryHost = ctx.destination.registry
  const progress = blobProgress(list, emit)
  const blobs = new BlobPlacer({reader: ctx.reader, registry, registryHost, pools, progress, counts, emit})
  const manifests = {registry, registryHost, policy: ctx.policy, pools, blobs, counts, emit}
  const remaining = new Map<SourceImage, number>()
  for (const t of list) remaining.set(t.image, (remaining.get(t.image) ?? 0) + 1)

  let completed = 0
  await Promise.all(
    list.map(async (t) => {
      try {
        const {digest, filtered} = await pushImage(manifests, t)
        const r = results.record(t, t.existing && !t.acceptable.has(t.existing) ? 'overwritten' : 'pushed', digest, filtered)
        completed++
        emit({type: 'target-done', target: r, source: t.image.name})
        const left = (remaining.get(t.image) ?? 1) - 1
        remaining.set(t.image, left)
        if (left === 0) emit({type: 'image-done', source: t.image.name, targets: results.of(list.filter((x) => x.image === t.image))})
      } catch (error) {
        pools.failure ??= error
      }
    }),
  )
  if (pools.failure) throw incompleteError(ctx.destination, completed, list.length, pools.failure)
}
