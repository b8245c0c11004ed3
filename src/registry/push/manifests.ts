/**
 * Steps 4 and 5, manifests: children always before parents. A platform manifest (or nested index) is put by digest
 * once its blobs (or children) are in place, unless the registry already has it; the image's root, last, under its
 * tag. That last PUT is where the platform policy applies to a sparse index (platforms listed whose content is not
 * in the bundle), which distribution refuses:
 *  - `auto`: the upstream index as is (digest kept); if the registry refuses it, the filtered index instead;
 *  - `sparse`: the upstream index only, failing where refused;
 *  - `filtered`: always the filtered index (only present platforms; its own digest, the same on every run).
 */
import type {Digest} from '../../oci/digest.js'
import type {Reference} from '../../oci/reference.js'
import type {RawManifest} from '../../oci/types.js'
import {RegistryError} from '../errors.js'
import type {ManifestNode} from '../push-source.js'
import type {BlobOrigin, BlobPlacer} from './blobs.js'
import type {Target} from './check.js'
import type {WritePools} from './pools.js'
import type {Emit, PlatformPolicy, PushCounts, PushRegistry} from './types.js'

/** Priority of manifest exchanges in the request pool: ahead of blob checks, they gate or complete whole images. */
const MANIFEST_PRIORITY = Number.MAX_SAFE_INTEGER

/** The distribution codes with which a registry refuses an index whose children it does not have. */
const REFUSED_INDEX_CODES = ['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'MANIFEST_INVALID', 'BLOB_UNKNOWN']

/** Did the registry refuse the index itself (400, or a code saying a child is unknown or the index invalid)? */
export function isRefusedIndex(error: unknown): error is RegistryError {
  return error instanceof RegistryError && (error.status === 400 || error.hasCode(...REFUSED_INDEX_CODES))
}

/** The registry's reason for a refusal, for the operator's note: its first error code. */
export function refusalReason(error: RegistryError): string {
  return error.errors.find((e) => e.code !== '')?.code ?? 'refused'
}

export interface ManifestContext {
  registry: PushRegistry
  registryHost: string
  policy: PlatformPolicy
  pools: WritePools
  blobs: BlobPlacer
  counts: PushCounts
  emit: Emit
}

/** What the image's name points at once written. */
export interface Written {
  digest: Digest
  filtered: boolean
}

/** Push a target's whole tree: blobs (read from `from` where they must be uploaded), children, then the root under its tag (or digest). */
export async function pushImage(ctx: ManifestContext, t: Target, from: BlobOrigin): Promise<Written> {
  await putChildren(ctx, t, t.image.root, from)
  return putRoot(ctx, t, t.image.root)
}

/** What a manifest needs before it can be put: its blobs (an image manifest) or its children (an index). */
async function putChildren(ctx: ManifestContext, t: Target, node: ManifestNode, from: BlobOrigin): Promise<void> {
  if (node.kind === 'manifest') await Promise.all(node.blobs.map((b) => ctx.blobs.ensure(t.repository, b, from)))
  else await Promise.all(node.children.map((c) => putChild(ctx, t, c, from)))
}

/** A child manifest, by digest: skipped if the registry has it, else its own children first. */
async function putChild(ctx: ManifestContext, t: Target, node: ManifestNode, from: BlobOrigin): Promise<void> {
  const repo = repoOf(ctx, t)
  const head = await ctx.pools.request(MANIFEST_PRIORITY, () => ctx.registry.headManifest({...repo, digest: node.raw.digest}))
  if (head) {
    ctx.counts.manifests.present++
    return
  }
  await putChildren(ctx, t, node, from)
  await put(ctx, repo, node.raw.digest, node.raw)
}

/** The root under its tag (by digest when the bundle names it by digest), with the platform policy for sparse indexes. */
async function putRoot(ctx: ManifestContext, t: Target, node: ManifestNode): Promise<Written> {
  const repo = repoOf(ctx, t)
  const tag = t.image.ref.tag
  const putAs = (raw: RawManifest) => put(ctx, repo, tag ?? raw.digest, raw)
  if (!node.filtered || ctx.policy === 'sparse') return {digest: await putAs(node.raw), filtered: false}
  if (ctx.policy === 'filtered') return {digest: await putAs(node.filtered), filtered: true}
  try {
    return {digest: await putAs(node.raw), filtered: false}
  } catch (error) {
    if (!isRefusedIndex(error)) throw error
    const digest = await putAs(node.filtered)
    ctx.emit({type: 'filtered', reference: t.reference, upstreamDigest: node.raw.digest, digest, reason: refusalReason(error)})
    return {digest, filtered: true}
  }
}

async function put(ctx: ManifestContext, repo: Reference, tagOrDigest: string, raw: RawManifest): Promise<Digest> {
  await ctx.pools.request(MANIFEST_PRIORITY, () => ctx.registry.putManifest(repo, tagOrDigest, raw))
  ctx.counts.manifests.pushed++
  return raw.digest
}

function repoOf(ctx: ManifestContext, t: Target): Reference {
  return {registry: ctx.registryHost, repository: t.repository}
}
