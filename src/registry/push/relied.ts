/**
 * A delta bundle's push (issue 20): the layers the delta relies on are not in it, so the registry must already hold
 * them. Before any blob is written: HEAD each relied-on layer in each destination repository that needs it; one held
 * under another repository of the destination is mounted from there; when a relied-on layer is nowhere, the push is
 * refused, naming the images, and nothing has been uploaded or mounted.
 */
import type {BundleMetadata} from '../../bundle/layout.js'
import {KubeferryError} from '../../oci/errors.js'
import type {Digest} from '../../oci/digest.js'
import type {Target} from './check.js'
import type {Limiter} from '../../util/limiter.js'
import type {PushRegistry} from './types.js'

/** Refuses a delta made for nodes only (against a node inventory): a registry cannot rely on a node's content store. */
export function assertDeltaForPush(meta: BundleMetadata | undefined): void {
  const delta = meta?.delta
  if (delta && !delta.for.includes('push')) {
    throw new KubeferryError('BUNDLE_INVALID', `this is a delta bundle made against a ${delta.base.kind} (${delta.base.name}): it is for install.sh or \`kubeferry load\` on nodes holding that base, not for a registry; nothing was pushed`, {
      hint: 'import it on the nodes it was made for, or make a delta against the registry with `kubeferry inventory REGISTRY/PREFIX` and `create --base`',
    })
  }
}

/**
 * Puts every relied-on layer in place in each destination repository (HEAD, else mount), or throws before writing.
 * `dryRun`: only the HEADs (a dry run refuses as the push would, and writes nothing).
 */
export async function placeReliedBlobs(meta: BundleMetadata | undefined, targets: Target[], registry: PushRegistry, requests: Limiter, dryRun = false): Promise<{present: number; mounted: number}> {
  const relies = meta?.delta?.relies ?? []
  if (relies.length === 0 || targets.length === 0) return {present: 0, mounted: 0}
  // destination repository → the relied-on layers its images need
  const needs = new Map<string, {ref: Target['ref']; images: Set<string>; blobs: Map<Digest, string[]>}>()
  for (const t of targets) {
    let need = needs.get(t.repository)
    if (!need) needs.set(t.repository, (need = {ref: {registry: t.ref.registry, repository: t.repository}, images: new Set(), blobs: new Map()}))
    need.images.add(t.image.name)
  }
  for (const need of needs.values()) {
    for (const blob of relies) {
      const users = blob.usedBy.filter((u) => need.images.has(u.image)).map((u) => u.image)
      if (users.length > 0) need.blobs.set(blob.digest, users)
    }
  }
  const asks = [...needs.entries()].flatMap(([repository, need]) => [...need.blobs.keys()].map((digest) => ({repository, need, digest})))
  const held = await Promise.all(asks.map((a) => requests.run(() => registry.blobExists(a.need.ref, a.digest))))
  const holders = new Map<Digest, string>() // a repository of the destination that has the blob
  asks.forEach((a, i) => held[i] && holders.set(a.digest, a.repository))
  const absent = asks.filter((a, i) => !held[i] && !holders.has(a.digest))
  if (absent.length > 0) {
    const images = [...new Set(absent.flatMap((a) => a.need.blobs.get(a.digest)!))].sort()
    throw new KubeferryError('NOT_FOUND', `the registry does not hold ${new Set(absent.map((a) => a.digest)).size} layer(s) this delta bundle relies on; missing for: ${images.join(', ')}. Nothing was pushed`, {
      hint: `push its base (${meta!.delta!.base.name}) into this registry first, or push a full bundle (or a delta made against \`kubeferry inventory\` of this registry)`,
    })
  }
  const mounts = asks.filter((_, i) => !held[i])
  if (dryRun) return {present: asks.length - mounts.length, mounted: 0}
  await Promise.all(
    mounts.map(async (a) => {
      const mounted = await requests.run(() => registry.mountBlob(a.need.ref, a.digest, holders.get(a.digest)!))
      if (!mounted) throw new KubeferryError('REGISTRY_ERROR', `${a.repository}: could not mount relied-on layer ${a.digest} from ${holders.get(a.digest)}`, {hint: 'the registry refuses cross-repository mounts; push the base under the same names first'})
    }),
  )
  return {present: asks.length - mounts.length, mounted: mounts.length}
}
