/**
 * What `push` reads from a bundle: for each named image of `index.json`, its tree of manifests (original bytes,
 * digests checked) down to the blobs, with the platforms whose content is absent ("sparse" indexes) noted.
 * Reading this is also push's cheap structural check: every manifest's bytes hash to their digest and every blob a
 * present manifest needs is in the tar with the right size. Blob bytes are verified while they stream to the
 * registry (BundleReader.openBlob), so nothing corrupt is ever committed.
 */
import {KubeferryError} from '../oci/errors.js'
import {sha256Digest, isDigest, type Digest} from '../oci/digest.js'
import {isImageManifestMediaType, isIndexMediaType} from '../oci/media-types.js'
import type {Descriptor, ImageIndex, ImageManifest, RawManifest} from '../oci/types.js'
import {ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, blobPath, INDEX_FILE, METADATA_FILE, type BundleMetadata} from '../bundle/layout.js'
import type {BundleReader} from '../bundle/reader.js'
import {formatPlatform} from '../oci/platform.js'
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

export interface SourceImage {
  /** Canonical reference as the bundle names it. */
  name: string
  ref: Reference
  role?: string
  root: ManifestNode
  sparse: boolean
}

const MAX_MANIFEST = 4 * 1024 * 1024

function invalid(reader: BundleReader, message: string): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', `${reader.path}: ${message}`, {hint: 'run `kubeferry verify` on the bundle and rebuild or copy it again'})
}

async function readManifest(reader: BundleReader, desc: Pick<Descriptor, 'digest' | 'size' | 'mediaType'>, what: string): Promise<{raw: RawManifest; json: Record<string, unknown>}> {
  const entry = reader.blobEntry(desc.digest)
  if (!entry) throw invalid(reader, `${what}: manifest ${desc.digest} is missing`)
  if (entry.size !== desc.size) throw invalid(reader, `${what}: manifest ${desc.digest} is ${entry.size} bytes, its descriptor says ${desc.size}`)
  const bytes = await reader.readFile(blobPath(desc.digest), MAX_MANIFEST)
  if (sha256Digest(bytes) !== desc.digest) throw invalid(reader, `${what}: manifest ${desc.digest} does not match its digest`)
  let json: Record<string, unknown>
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch {
    throw invalid(reader, `${what}: manifest ${desc.digest} is not JSON`)
  }
  const mediaType = typeof json.mediaType === 'string' && json.mediaType !== '' ? json.mediaType : desc.mediaType
  // The manifest's own mediaType (inside the digested bytes) wins; a descriptor of the other kind is an error,
  // an OCI/Docker spelling difference of the same kind is not (some writers label Docker lists as OCI indexes).
  if (desc.mediaType && isIndexMediaType(mediaType) !== isIndexMediaType(desc.mediaType)) {
    throw invalid(reader, `${what}: manifest ${desc.digest} says it is ${String(json.mediaType)}, its descriptor says ${desc.mediaType}`)
  }
  return {raw: {bytes, mediaType, digest: desc.digest}, json}
}

function checkBlob(reader: BundleReader, blob: Descriptor, what: string): void {
  if (!isDigest(blob.digest)) throw invalid(reader, `${what}: invalid blob digest ${String(blob.digest)}`)
  const entry = reader.blobEntry(blob.digest)
  if (!entry) throw invalid(reader, `${what}: blob ${blob.digest} is missing`)
  if (entry.size !== blob.size) throw invalid(reader, `${what}: blob ${blob.digest} is ${entry.size} bytes, the manifest says ${blob.size}`)
}

async function readNode(reader: BundleReader, desc: Descriptor, what: string, depth: number): Promise<ManifestNode> {
  if (depth > 4) throw invalid(reader, `${what}: indexes nested too deeply`)
  const {raw, json} = await readManifest(reader, desc, what)
  const platform = desc.platform ? formatPlatform(desc.platform) : undefined
  if (isIndexMediaType(raw.mediaType)) {
    const index = json as unknown as ImageIndex
    if (!Array.isArray(index.manifests)) throw invalid(reader, `${what}: index ${raw.digest} has no manifests list`)
    const present: Descriptor[] = []
    const missing: Descriptor[] = []
    for (const child of index.manifests) {
      if (!isDigest(child.digest)) throw invalid(reader, `${what}: invalid manifest digest ${String(child.digest)}`)
      if (reader.blobEntry(child.digest)) present.push(child)
      else missing.push(child)
    }
    // Read in parallel (small positioned reads); order kept.
    const children = await Promise.all(present.map((child) => readNode(reader, child, what, depth + 1)))
    if (children.length === 0) throw invalid(reader, `${what}: none of the platforms of index ${raw.digest} is in the bundle`)
    const node: ManifestNode = {raw, size: desc.size, kind: 'index', platform, children, missing, blobs: []}
    if (missing.length > 0) node.filtered = filteredIndex(json, new Set(children.map((c) => c.raw.digest)), raw.mediaType)
    return node
  }
  if (isImageManifestMediaType(raw.mediaType)) {
    const manifest = json as unknown as ImageManifest
    if (!manifest.config || !Array.isArray(manifest.layers)) throw invalid(reader, `${what}: manifest ${raw.digest} has no config or layers`)
    const blobs: ManifestNode['blobs'] = []
    for (const blob of [manifest.config, ...manifest.layers]) {
      // Non-distributable (foreign) layers are fetched by nodes from their URLs, never pushed.
      if (blob.urls?.length && !reader.blobEntry(blob.digest)) continue
      checkBlob(reader, blob, what)
      blobs.push({digest: blob.digest, size: blob.size, mediaType: blob.mediaType})
    }
    return {raw, size: desc.size, kind: 'manifest', platform, children: [], missing: [], blobs}
  }
  throw new KubeferryError('UNSUPPORTED_MEDIA_TYPE', `${reader.path}: ${what} is a ${raw.mediaType || 'manifest of unknown type'}`, {hint: 'kubeferry pushes OCI and Docker v2 images and indexes only'})
}

/** The index minus its absent children, serialised deterministically (same bundle → same digest on every run). */
export function filteredIndex(json: Record<string, unknown>, present: Set<string>, mediaType: string): RawManifest {
  const copy = {...json, manifests: (json.manifests as Descriptor[]).filter((m) => present.has(m.digest))}
  const bytes = Buffer.from(JSON.stringify(copy, null, 2), 'utf8')
  return {bytes, mediaType, digest: sha256Digest(bytes)}
}

/** Image name of an index.json descriptor: containerd's annotation, else a fully qualified OCI ref name. */
function descriptorName(desc: Descriptor): string | undefined {
  const a = desc.annotations ?? {}
  return a[ANNOTATION_CONTAINERD_NAME] ?? (a[ANNOTATION_REF_NAME]?.includes('/') ? a[ANNOTATION_REF_NAME] : undefined)
}

/** An image named by index.json, before its manifests are read. */
export interface NamedImage {
  /** Canonical reference as the bundle names it. */
  name: string
  ref: Reference
  role?: string
  desc: Descriptor
}

/** The images index.json names (first descriptor per name), without reading their manifests. */
export async function listSourceImages(reader: BundleReader): Promise<NamedImage[]> {
  const index = await reader.readJson<ImageIndex>(INDEX_FILE)
  if (!Array.isArray(index.manifests)) throw invalid(reader, `${INDEX_FILE} has no manifests list`)
  let roles = new Map<string, string>()
  if (reader.has(METADATA_FILE)) {
    const meta = await reader.readJson<BundleMetadata>(METADATA_FILE)
    roles = new Map((meta.images ?? []).filter((i) => i.role).map((i) => [i.name, i.role as string]))
  }
  const named: NamedImage[] = []
  const seen = new Set<string>()
  for (const desc of index.manifests) {
    const name = descriptorName(desc)
    if (!name) continue
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

/** One named image with its manifests read and checked. */
export async function readSourceImage(reader: BundleReader, image: NamedImage): Promise<SourceImage> {
  const root = await readNode(reader, image.desc, image.name, 0)
  return {name: image.name, ref: image.ref, ...(image.role ? {role: image.role} : {}), root, sparse: hasMissing(root)}
}

/** Every named image of the bundle, manifests read and checked (in parallel; index.json's order kept). */
export async function readSourceImages(reader: BundleReader): Promise<SourceImage[]> {
  return Promise.all((await listSourceImages(reader)).map((image) => readSourceImage(reader, image)))
}

function hasMissing(node: ManifestNode): boolean {
  return node.missing.length > 0 || node.children.some(hasMissing)
}

/** Platforms present in an image (for messages). */
export function presentPlatforms(node: ManifestNode): string[] {
  if (node.kind === 'manifest') return node.platform ? [node.platform] : []
  return node.children.flatMap((c) => (c.kind === 'manifest' ? [c.platform ?? '?'] : presentPlatforms(c)))
}
