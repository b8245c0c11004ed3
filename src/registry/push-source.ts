/**
 * What `push` reads from a bundle: for each named image of `index.json`, its tree of manifests (original bytes,
 * digests checked) down to the blobs, with the platforms whose content is absent ("sparse" indexes) noted.
 * Reading this is also push's cheap structural check: every manifest's bytes hash to their digest and every blob a
 * present manifest needs is in the tar with the right size. Blob bytes are verified while they stream to the
 * registry (BundleReader.openBlob), so nothing corrupt is ever committed.
 */
import {KubeferryError} from '../oci/errors.js'
import {sha256Digest, isDigest, type Digest} from '../oci/digest.js'
import type {ManifestProblem} from '../oci/manifest.js'
import type {SourcedImage} from '../oci/source.js'
import type {Descriptor, RawManifest} from '../oci/types.js'
import {isSparse, walkTree, type TreeNode} from '../oci/walk.js'
import {ANNOTATION_CONTAINERD_NAME, INDEX_FILE, METADATA_FILE, type BundleMetadata} from '../bundle/layout.js'
import type {BundleReader} from '../bundle/reader.js'
import {BundleSource} from '../bundle/source.js'
import {formatReference, parseReference, type Reference} from '../oci/reference.js'

export interface ManifestNode {
  raw: RawManifest
  size: number
  kind: 'index' | 'manifest'
  /** Platform of this manifest as its parent index lists it. */
  platform?: string
  /** index: children whose bytes are in the bundle (pushed first). */
  children: ManifestNode[]
  /** index: children listed but absent from the bundle. */
  missing: Descriptor[]
  /** manifest: config then layers (blobs that must be present before the manifest). */
  blobs: Array<{digest: Digest; size: number; mediaType: string}>
  /** index with missing children: the same index listing only the present ones (its own, different digest). */
  filtered?: RawManifest
}

/** An image as push writes it: the walked tree (SourcedImage) and push's view of it. */
export interface SourceImage extends SourcedImage {
  role?: string
  root: ManifestNode
  sparse: boolean
}

/** Push's view of any source's image: the tree with the filtered index ready for a registry that refuses sparse ones. */
export function sourceImageOf(image: SourcedImage, role?: string): SourceImage {
  return {...image, ...(role ? {role} : {}), root: manifestNode(image.tree), sparse: isSparse(image.tree)}
}

function invalid(reader: BundleReader, message: string): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', `${reader.path}: ${message}`, {hint: 'run `kubeferry verify` on the bundle and rebuild or copy it again'})
}

/** push's wording of a broken manifest rule: an unsupported media type is that, the rest an invalid bundle. */
function pushError(reader: BundleReader, problem: ManifestProblem): KubeferryError {
  if (problem.kind === 'MEDIA_TYPE') return new KubeferryError('UNSUPPORTED_MEDIA_TYPE', `${reader.path}: ${problem.message}`, {hint: 'kubeferry pushes OCI and Docker v2 images and indexes only'})
  return invalid(reader, problem.message)
}

/** push's view of a walked node: the same tree, with the filtered index ready for a registry that refuses sparse ones. */
function manifestNode(node: TreeNode): ManifestNode {
  const children = node.children.map(manifestNode)
  const out: ManifestNode = {
    raw: node.raw,
    size: node.descriptor.size,
    kind: node.kind,
    ...(node.platform ? {platform: node.platform} : {}),
    children,
    missing: node.absent,
    blobs: node.blobs.map((b) => ({digest: b.digest, size: b.size, mediaType: b.mediaType})),
  }
  if (node.index && node.absent.length > 0) out.filtered = filteredIndex(node.index as unknown as Record<string, unknown>, new Set(children.map((c) => c.raw.digest)), node.raw.mediaType)
  return out
}

/** The index minus its absent children, serialised deterministically (same bundle → same digest on every run). */
export function filteredIndex(json: Record<string, unknown>, present: Set<string>, mediaType: string): RawManifest {
  const copy = {...json, manifests: (json.manifests as Descriptor[]).filter((m) => present.has(m.digest))}
  const bytes = Buffer.from(JSON.stringify(copy, null, 2), 'utf8')
  return {bytes, mediaType, digest: sha256Digest(bytes)}
}

/** An image named by index.json, before its manifests are read. */
export interface NamedImage {
  /** Canonical reference as the bundle names it. */
  name: string
  ref: Reference
  role?: string
  desc: Descriptor
}

/** The images index.json names (first descriptor per name, BundleSource.images), without reading their manifests. */
export async function listSourceImages(reader: BundleReader): Promise<NamedImage[]> {
  const entries = await new BundleSource(reader).images()
  let roles = new Map<string, string>()
  if (reader.has(METADATA_FILE)) {
    const meta = await reader.readJson<BundleMetadata>(METADATA_FILE)
    roles = new Map((meta.images ?? []).filter((i) => i.role).map((i) => [i.name, i.role as string]))
  }
  const named: NamedImage[] = []
  const seen = new Set<string>()
  for (const {name, desc} of entries) {
    let ref: Reference
    try {
      ref = parseReference(name)
    } catch (error) {
      throw invalid(reader, `${INDEX_FILE} names an image "${name}" that is not a valid reference (${(error as Error).message})`)
    }
    const canonical = formatReference({...ref, digest: undefined})
    if (seen.has(canonical)) continue
    seen.add(canonical)
    if (!isDigest(desc.digest)) throw invalid(reader, `${INDEX_FILE}: invalid digest for ${name}`)
    named.push({name: canonical, ref: {...ref, digest: undefined}, role: roles.get(canonical) ?? roles.get(name), desc})
  }
  if (named.length === 0) throw invalid(reader, `${INDEX_FILE} names no images (no ${ANNOTATION_CONTAINERD_NAME} annotations)`)
  return named
}

/** One named image with its manifests read and checked (walk.ts: the rules every consumer shares). */
export async function readSourceImage(reader: BundleReader, image: NamedImage, source: BundleSource = new BundleSource(reader)): Promise<SourceImage> {
  const tree = await walkTree(source.walkSource(), image.desc, {what: image.name, toError: (problem) => pushError(reader, problem)})
  return sourceImageOf({name: image.name, ref: image.ref, tree: tree!}, image.role)
}

/** Every named image of the bundle, manifests read and checked (in parallel; index.json's order kept). */
export async function readSourceImages(reader: BundleReader): Promise<SourceImage[]> {
  const source = new BundleSource(reader)
  return Promise.all((await listSourceImages(reader)).map((image) => readSourceImage(reader, image, source)))
}

/** Platforms present in an image (for messages). */
export function presentPlatforms(node: ManifestNode): string[] {
  if (node.kind === 'manifest') return node.platform ? [node.platform] : []
  return node.children.flatMap((c) => (c.kind === 'manifest' ? [c.platform ?? '?'] : presentPlatforms(c)))
}
