/**
 * The publishers' artifacts carried with the images (issue 19): for every planned image, its own digest and each
 * carried platform's manifest digest are looked up in the source — cosign's tags (`sha256-<hex>.sig`, `.att`,
 * `.sbom`) and the OCI 1.1 referrers — in parallel (bounded). What exists is walked by the one walker (oci/walk.ts),
 * recorded on the image (BundleImage.artifacts) and added to the plan's blobs (manifest bytes in memory, config and
 * layers downloaded like any layer), so the contract writes, lists and checks them as it does every blob.
 */
import {KubeferryError, isKubeferryError} from '../oci/errors.js'
import {digestTag} from '../oci/artifact-tags.js'
import type {Digest} from '../oci/digest.js'
import type {ManifestProblem} from '../oci/manifest.js'
import type {Reference} from '../oci/reference.js'
import {walkSourceOf, type ImageSource} from '../oci/source.js'
import type {Descriptor, RawManifest} from '../oci/types.js'
import {absentManifests, treeNodes, walkFromRaw, walkTree, type TreeNode} from '../oci/walk.js'
import {mapLimit} from '../util/async.js'
import type {BundleArtifact, BundleArtifactManifest, BundleImage, BundleLayer} from './layout.js'
import type {BundlePlan, PlannedBlob} from './plan.js'

export type ArtifactKind = BundleArtifact['kind']

/** cosign's tag suffixes and what each holds. */
export const COSIGN_SUFFIXES: ReadonlyArray<{suffix: string; kind: ArtifactKind}> = [
  {suffix: 'sig', kind: 'signature'},
  {suffix: 'att', kind: 'attestation'},
  {suffix: 'sbom', kind: 'sbom'},
]

/** Referrer artifact types that are signatures (cosign's OCI 1.1 mode, Sigstore bundles, Notary). */
const SIGNATURE_ARTIFACT_TYPES = new Set(['application/vnd.dev.cosign.artifact.sig.v1+json', 'application/vnd.dev.sigstore.bundle.v0.3+json', 'application/vnd.dev.sigstore.bundle+json;version=0.3', 'application/vnd.cncf.notary.signature'])

export interface CarryOptions {
  concurrency: number
  /** Refuse (before anything is written) when an image has no signature: create --require-signed-images. */
  requireSigned?: boolean
  /** Each config and layer to download, as the planner announces its own (build.ts starts the fetch). */
  onBlob?: (blob: {digest: Digest; size: number; mediaType: string; from: Reference}, user: string) => void
}

/** True when an artifact is a signature: a cosign `.sig`, or a referrer of a signature artifact type. */
export function isSignature(artifact: Pick<BundleArtifact, 'kind' | 'artifactType'>): boolean {
  return artifact.kind === 'signature' || (artifact.kind === 'referrer' && SIGNATURE_ARTIFACT_TYPES.has(artifact.artifactType ?? ''))
}

interface Found {
  subject: Digest
  kind: ArtifactKind
  tag?: string
  node: TreeNode
}

/** The lookups of one image: each subject's cosign tags and referrers (order kept: subjects, then kinds). */
function lookups(source: ImageSource, image: BundleImage, ref: Reference, what: (subject: Digest, kind: string) => string, warn: (message: string) => void): Array<() => Promise<Found[]>> {
  const subjects = [...new Set([image.digest, ...image.platforms.map((p) => p.digest)])]
  const walkSource = walkSourceOf(source, ref)
  const toError = (problem: ManifestProblem): KubeferryError =>
    new KubeferryError(problem.kind === 'MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : 'REGISTRY_ERROR', problem.message, {hint: 'the registry serves a broken artifact for this image; pass --no-signatures to build without the artifacts'})
  /** An artifact kubeferry cannot carry (not an image manifest or index) is left out, with a warning; the rest go on. */
  const unlessUnsupported = async (find: () => Promise<Found | undefined>): Promise<Found[]> => {
    try {
      const found = await find()
      return found ? [found] : []
    } catch (error) {
      if (!isKubeferryError(error) || error.code !== 'UNSUPPORTED_MEDIA_TYPE') throw error
      warn(`${image.name}: an artifact was left out: ${error.message}`)
      return []
    }
  }
  const tasks: Array<() => Promise<Found[]>> = []
  for (const subject of subjects) {
    for (const {suffix, kind} of COSIGN_SUFFIXES) {
      tasks.push(() =>
        unlessUnsupported(async () => {
          const tag = digestTag(subject, suffix)
          const raw: RawManifest | undefined = await source.findTagged!(ref, tag)
          if (!raw) return undefined
          const node = await walkFromRaw(walkSource, raw, {what: what(subject, tag), toError})
          return {subject, kind, tag, node: node!}
        }),
      )
    }
    tasks.push(async () => {
      const found: Found[] = []
      for (const desc of await source.referrers!(ref, subject, (message) => warn(`${image.name}: ${message}`))) {
        const one = await unlessUnsupported(async () => {
          const node = (await walkTree(walkSource, stripPlatform(desc), {what: what(subject, `referrer ${desc.digest}`), toError}))!
          // A referrers tag is kept by clients, not the registry: an entry about another digest is not this one's.
          return (node.manifest ?? node.index)!.subject?.digest !== subject ? undefined : {subject, kind: 'referrer' as const, node}
        })
        found.push(...one)
      }
      return found
    })
  }
  return tasks
}

/** A referrers list's descriptor without its platform: the walker would otherwise name the artifact by it. */
function stripPlatform(desc: Descriptor): Descriptor {
  const {platform: _platform, ...rest} = desc
  return rest
}

/**
 * What bundle.json records of a found artifact: an image manifest with its config and layers, or an index (a
 * multi-platform SBOM or attestation, a referrer that is an index) with every manifest under it as the walker met them.
 */
function recordOf(found: Found): BundleArtifact {
  const {node} = found
  const own = node.manifest ?? node.index!
  const artifactType = own.artifactType ?? node.descriptor.artifactType ?? (found.kind === 'referrer' && node.manifest ? node.manifest.config.mediaType : undefined)
  return {
    kind: found.kind,
    subject: found.subject,
    ...(found.tag ? {tag: found.tag} : {}),
    digest: node.raw.digest,
    mediaType: node.raw.mediaType,
    size: node.raw.bytes.length,
    ...(artifactType ? {artifactType} : {}),
    ...(node.manifest ? blobsOf(node) : {manifests: [...treeNodes(node)].slice(1).map(partOf)}),
  }
}

const layerOf = (d: Descriptor): BundleLayer => ({digest: d.digest, size: d.size, mediaType: d.mediaType})
const blobsOf = (node: TreeNode): {config: BundleLayer; layers: BundleLayer[]} => ({config: layerOf(node.manifest!.config), layers: node.manifest!.layers.map(layerOf)})
const partOf = (node: TreeNode): BundleArtifactManifest => ({
  digest: node.raw.digest,
  size: node.raw.bytes.length,
  mediaType: node.raw.mediaType,
  ...(node.platform ? {platform: node.platform} : {}),
  ...(node.manifest ? blobsOf(node) : {}),
})

/**
 * Look up and carry the artifacts of every image of `plan` (in place: images gain `artifacts`, the plan's blobs the
 * artifacts' blobs, still sorted). A source without artifact lookups carries none.
 */
export async function carryArtifacts(source: ImageSource, plan: BundlePlan, options: CarryOptions): Promise<void> {
  if (!source.findTagged || !source.referrers) return
  const perImage = plan.images.map((image) => {
    const ref: Reference = {registry: image.registry, repository: image.repository}
    const what = (subject: Digest, kind: string): string => `${image.name}: ${kind} of ${subject === image.digest ? 'the image' : subject}`
    return {image, ref, tasks: lookups(source, image, ref, what, (message) => plan.warnings.push(message))}
  })
  const all = perImage.flatMap(({image, ref, tasks}) => tasks.map((task) => ({image, ref, task})))
  const results = await mapLimit(all, options.concurrency, async ({image, task}) => {
    try {
      return await task()
    } catch (error) {
      throw isKubeferryError(error) ? new KubeferryError(error.code, `${image.name}: looking up its signatures: ${error.message}`, {hint: error.hint ?? 'pass --no-signatures to build without them', cause: error}) : error
    }
  })
  const blobs = new Map(plan.blobs.map((b) => [b.digest, b]))
  const add = (blob: Omit<PlannedBlob, 'usedBy'>, user: string): void => {
    const known = blobs.get(blob.digest)
    if (known) {
      if (!known.usedBy.includes(user)) known.usedBy.push(user)
      return
    }
    blobs.set(blob.digest, {...blob, usedBy: [user]})
    if (!blob.bytes) options.onBlob?.({digest: blob.digest, size: blob.size, mediaType: blob.mediaType, from: blob.from}, user)
  }
  let next = 0
  for (const {image, ref, tasks} of perImage) {
    const found = results.slice(next, next + tasks.length).flat()
    next += tasks.length
    const artifacts: BundleArtifact[] = []
    const seen = new Set<string>()
    for (const f of found) {
      if (seen.has(f.node.raw.digest)) continue // a signature both tagged and listed as a referrer: once
      seen.add(f.node.raw.digest)
      const absent = absentManifests(f.node) // an artifact is carried whole or not at all
      if (absent.length > 0) throw new KubeferryError('NOT_FOUND', `${image.name}: ${f.tag ?? 'referrer'} ${f.node.raw.digest} is an index whose manifests ${absent.map((d) => d.digest).join(', ')} the registry does not hold`, {hint: 'the publisher\'s artifact is incomplete upstream; pass --no-signatures to build without the artifacts'})
      artifacts.push(recordOf(f))
      // Every manifest of the artifact's tree (bytes in memory, as read), then its configs and layers (downloaded).
      for (const n of treeNodes(f.node)) {
        add({digest: n.raw.digest, size: n.raw.bytes.length, mediaType: n.raw.mediaType, bytes: n.raw.bytes, from: ref}, image.name)
        if (n.manifest) for (const blob of [n.manifest.config, ...n.manifest.layers]) add({...layerOf(blob), from: ref}, image.name)
      }
    }
    if (artifacts.length > 0) image.artifacts = artifacts
  }
  plan.blobs = [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  if (options.requireSigned) refuseUnsigned(plan.images)
}

/** --require-signed-images: every image needs a signature on its own digest or on each carried platform. */
function refuseUnsigned(images: BundleImage[]): void {
  const unsigned = images.filter((image) => {
    const signed = new Set((image.artifacts ?? []).filter(isSignature).map((a) => a.subject))
    return !signed.has(image.digest) && !image.platforms.every((p) => signed.has(p.digest))
  })
  if (unsigned.length === 0) return
  const names = unsigned.map((i) => `${i.name}@${i.digest}`)
  throw new KubeferryError('NOT_FOUND', `${unsigned.length} image(s) have no signature (cosign sha256-<hex>.sig tag or signature referrer): ${names.join(', ')}`, {
    hint: 'no bundle was written; ask the publisher for signed images, or leave out --require-signed-images to carry them unsigned',
  })
}
