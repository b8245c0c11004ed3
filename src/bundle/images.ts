/**
 * The images of a bundle as its content says: index.json's names (BundleSource.images), each tree read by the one
 * walker (oci/walk.ts) through the bundle as a source, described in the shape bundle.json uses (BundleImage), so
 * that `inspect` and `load` (through the import plan) read what the manifests hold, not a second copy of it.
 * bundle.json adds only what OCI content cannot say: each image's role and sources, and the order of platforms asked.
 */
import {KubeferryError} from '../oci/errors.js'
import type {ManifestProblem} from '../oci/manifest.js'
import {configPlatform, formatPlatform, normalizePlatform, parsePlatform, platformMatches} from '../oci/platform.js'
import {parseReference, type Reference} from '../oci/reference.js'
import type {Descriptor, Platform} from '../oci/types.js'
import {isSparse, walkTree, type TreeNode} from '../oci/walk.js'
import type {BundleImage, BundleMetadata, BundlePlatformImage} from './layout.js'
import {MAX_JSON_BYTES} from './reader.js'
import type {BundleSource} from './source.js'

export interface WalkedImage {
  /** What bundle.json would say of it, from the manifests. */
  image: BundleImage
  tree: TreeNode
}

function invalid(source: BundleSource, problem: ManifestProblem | string): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', `${source.label}: ${typeof problem === 'string' ? problem : problem.message}`, {hint: 'run `kubeferry verify` on the bundle and rebuild or copy it again'})
}

/** Every named image of the bundle, walked (in parallel; index.json's order kept). `meta` gives roles, sources and platform order. */
export async function walkBundleImages(source: BundleSource, meta?: BundleMetadata): Promise<WalkedImage[]> {
  const named = await source.images()
  if (named.length === 0) throw invalid(source, 'index.json names no images')
  return Promise.all(named.map((entry) => walkBundleImage(source, entry, meta)))
}

async function walkBundleImage(source: BundleSource, entry: {name: string; desc: Descriptor}, meta?: BundleMetadata): Promise<WalkedImage> {
  const {name, desc} = entry
  let ref: Reference
  try {
    ref = parseReference(name)
  } catch (error) {
    throw invalid(source, `index.json names an image "${name}" that is not a valid reference (${(error as Error).message})`)
  }
  const tree = (await walkTree(source.walkSource(), desc, {what: name, toError: (problem) => invalid(source, problem)}))!
  const described = meta?.images.find((i) => i.name === name)
  const platforms: BundlePlatformImage[] = []
  if (tree.kind === 'index') {
    // Image manifests only, and each keeps the media type its index entry gives it (as create recorded it).
    const children = tree.children.filter((c) => c.kind === 'manifest').map((c) => ({node: c, platform: normalizePlatform(c.descriptor.platform ?? {os: '', architecture: ''})}))
    for (const {node, platform} of inAskedOrder(children, meta)) platforms.push(platformImage(formatPlatform(platform), node, node.descriptor.mediaType))
  } else {
    // A single-platform image: its platform is in its config.
    platforms.push(platformImage(formatPlatform(await configPlatformOf(source, ref, tree)), tree, tree.raw.mediaType))
  }
  const image: BundleImage = {
    name,
    registry: ref.registry,
    repository: ref.repository,
    ...(ref.tag ? {tag: ref.tag} : {}),
    digest: desc.digest,
    mediaType: tree.raw.mediaType,
    size: desc.size,
    ...(described?.role ? {role: described.role} : {}),
    ...(described?.sources ? {sources: described.sources} : {}),
    sparse: isSparse(tree),
    platforms,
  }
  return {image, tree}
}

function platformImage(platform: string, node: TreeNode, mediaType: string): BundlePlatformImage {
  const {config, layers} = node.manifest!
  return {
    platform,
    digest: node.raw.digest,
    mediaType,
    size: node.raw.bytes.length,
    config: {digest: config.digest, size: config.size, mediaType: config.mediaType},
    layers: layers.map((l) => ({digest: l.digest, size: l.size, mediaType: l.mediaType})),
  }
}

/**
 * The platforms in the order create chose them: the order asked when the bundle was made for named platforms, the
 * index's order when it was made for all of them.
 */
function inAskedOrder<T extends {platform: Platform}>(items: T[], meta?: BundleMetadata): T[] {
  const asked = meta?.request?.platforms ?? []
  if (asked.length === 0 || asked.includes('all')) return items
  const wanted = asked.map((p) => {
    try {
      return parsePlatform(p)
    } catch {
      return undefined
    }
  })
  const rank = (p: Platform): number => {
    const exact = wanted.findIndex((w) => w !== undefined && formatPlatform(w) === formatPlatform(p))
    if (exact >= 0) return exact
    const loose = wanted.findIndex((w) => w !== undefined && platformMatches(w, p))
    return loose >= 0 ? loose : wanted.length
  }
  return items.map((item, i) => ({item, i, r: rank(item.platform)})).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.item)
}

async function configPlatformOf(source: BundleSource, ref: Reference, node: TreeNode): Promise<Platform> {
  const config = node.manifest!.config
  if (config.size > MAX_JSON_BYTES) throw invalid(source, `${ref.repository}: config ${config.digest} is ${config.size} bytes, more than the ${MAX_JSON_BYTES} allowed`)
  const chunks: Buffer[] = []
  for await (const chunk of await source.blob(ref, config)) chunks.push(chunk as Buffer)
  try {
    return configPlatform(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
  } catch {
    throw invalid(source, `config ${config.digest} is not a JSON object`)
  }
}
