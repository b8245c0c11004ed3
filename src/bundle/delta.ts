/**
 * Delta bundles (create --base, issue 20): a bundle with the full image list and metadata that leaves out the LAYER
 * blobs its base already holds. Manifests, indexes and configs are always carried: they are small, `ctr import`
 * needs every manifest and config to make the image records, and `docker load` reads the config for the diffIDs.
 *
 * What the runtimes do with such a tar (observed on containerd 1.6 and docker 20.10, see test/delta/):
 *  - `ctr images import` (with or without --platform): a layer absent from the tar but present in the namespace's
 *    content store is used as is; in a namespace without it the import fails at unpack ("content digest … not
 *    found") AFTER it has created the image records, so the check must come first;
 *  - `docker load` looks a layer up by its ChainID before it opens the layer's file: an existing chain is reused and
 *    the file never read; without it the load fails ("open …/blobs/sha256/<hex>: no such file"), after the images
 *    before it in manifest.json were loaded. Hence `chainId` per use in bundle.json.
 *
 * The bundle contract (contract.ts `reliedOn`) is the one place that says which entries a delta leaves out.
 */
import {createHash} from 'node:crypto'
import {KubeferryError} from '../oci/errors.js'
import {sha256Digest, type Digest} from '../oci/digest.js'
import {isImageManifestMediaType, isIndexMediaType} from '../oci/media-types.js'
import type {ImageSource} from '../oci/source.js'
import {mapLimit} from '../util/async.js'
import type {BundleDelta, DeltaBaseKind, ReliedBlob} from './layout.js'
import type {BundlePlan, PlannedBlob} from './plan.js'

/** What the base holds, as create reads it (src/delta/base.ts makes it from a bundle, bundle.json, lockfile or inventory). */
export interface DeltaBase {
  kind: DeltaBaseKind
  /** How the operator named it (a file name, a registry prefix, a runtime). */
  name: string
  sha256?: string
  for: Array<'push' | 'load'>
  /** Blob digests the base holds (layers are what counts). */
  blobs: Set<string>
  /** docker/podman layer ChainIDs the base holds (a node inventory of an image store). */
  chains: Set<string>
}

const CONFIG_MEDIA_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'])

/** A layer (not a manifest, index or config): the only kind of blob a delta may leave out. */
export function isLayerMediaType(mediaType: string): boolean {
  return !CONFIG_MEDIA_TYPES.has(mediaType) && !isIndexMediaType(mediaType) && !isImageManifestMediaType(mediaType)
}

/**
 * Whether the base may hold this layer: by its digest (known while planning), or, for a base that knows layers by
 * ChainID, possibly (only `deltaOf` tells, from the image's config). Its download does not start with the plan: the
 * delta starts it if it carries the layer.
 */
export function baseMayHoldBlob(base: DeltaBase, blob: {digest: string; mediaType: string}): boolean {
  return isLayerMediaType(blob.mediaType) && (base.blobs.has(blob.digest) || base.chains.size > 0)
}

/** docker's ChainIDs of a stack of diffIDs: chain(0) = diffID(0), chain(n) = sha256(chain(n-1) + " " + diffID(n)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = []
  for (const diffId of diffIds) {
    const previous = out.at(-1)
    out.push(previous === undefined ? diffId : `sha256:${createHash('sha256').update(`${previous} ${diffId}`).digest('hex')}`)
  }
  return out
}

async function readConfig(source: ImageSource, blob: PlannedBlob): Promise<{rootfs?: {diff_ids?: string[]}}> {
  const chunks: Buffer[] = []
  for await (const chunk of (await source.blob(blob.from, blob)) as AsyncIterable<Buffer>) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  if (sha256Digest(bytes) !== blob.digest) throw new KubeferryError('DIGEST_MISMATCH', `config ${blob.digest} of ${blob.usedBy[0]}: the registry served other bytes`, {hint: 'the registry or mirror is serving corrupt content'})
  return JSON.parse(bytes.toString('utf8')) as {rootfs?: {diff_ids?: string[]}}
}

/**
 * The delta of `plan` against `base`: the layers every use of which the base holds (by digest, or by docker chain for
 * an image-store inventory), with each use's ChainID (read from the configs, through `source`).
 */
export async function deltaOf(plan: BundlePlan, base: DeltaBase, source: ImageSource, concurrency = 8): Promise<BundleDelta> {
  const byDigest = new Map(plan.blobs.map((b) => [b.digest, b]))
  const uses = new Map<Digest, ReliedBlob['usedBy']>()
  const held = new Map<Digest, boolean>()
  const platformImages = plan.images.flatMap((image) => image.platforms.map((p) => ({image, p})))
  await mapLimit(platformImages, concurrency, async ({image, p}) => {
    const candidates = p.layers.some((l) => base.blobs.has(l.digest)) || base.chains.size > 0
    if (!candidates) {
      for (const layer of p.layers) held.set(layer.digest, false)
      return
    }
    const config = await readConfig(source, byDigest.get(p.config.digest)!)
    const diffIds = config.rootfs?.diff_ids ?? []
    if (diffIds.length !== p.layers.length) throw new KubeferryError('REGISTRY_ERROR', `${image.name} ${p.platform}: its config lists ${diffIds.length} diffIDs for ${p.layers.length} layers`, {hint: 'the image is malformed; build the delta without it or carry it whole'})
    const chains = chainIds(diffIds)
    p.layers.forEach((layer, i) => {
      const ok = base.blobs.has(layer.digest) || base.chains.has(chains[i])
      held.set(layer.digest, (held.get(layer.digest) ?? true) && ok)
      if (!uses.has(layer.digest)) uses.set(layer.digest, [])
      uses.get(layer.digest)!.push({image: image.name, platform: p.platform, chainId: chains[i]})
    })
  })
  const relies: ReliedBlob[] = [...held]
    .filter(([digest, ok]) => ok && isLayerMediaType(byDigest.get(digest)!.mediaType))
    .map(([digest]) => {
      const blob = byDigest.get(digest)!
      const usedBy = uses.get(digest)!.sort((a, b) => (a.image + a.platform < b.image + b.platform ? -1 : 1))
      return {digest, size: blob.size, mediaType: blob.mediaType, usedBy}
    })
    .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  return {
    base: {kind: base.kind, name: base.name, ...(base.sha256 ? {sha256: base.sha256} : {})},
    for: base.for,
    savedBytes: relies.reduce((n, b) => n + b.size, 0),
    relies,
  }
}

/** The plan without the blobs the delta relies on (what the build downloads and writes). */
export function carriedPlan(plan: BundlePlan, delta: BundleDelta): BundlePlan {
  const relied = new Set(delta.relies.map((b) => b.digest))
  return {...plan, blobs: plan.blobs.filter((b) => !relied.has(b.digest))}
}

/** The images that need a relied blob for `platform` (all platforms when omitted), each once, in bundle order. */
export function imagesRelyingOn(delta: BundleDelta, digests: Iterable<string>, platform?: string): string[] {
  const wanted = new Set(digests)
  const names = new Set<string>()
  for (const blob of delta.relies) {
    if (!wanted.has(blob.digest)) continue
    for (const use of blob.usedBy) if (!platform || use.platform === platform) names.add(use.image)
  }
  return [...names].sort()
}
