/**
 * The rules every manifest and index is held to, wherever it comes from (a registry, a bundle, the cache): one size
 * bound, one digest check, one media-type rule, one descriptor check. Each rule reports a `ManifestProblem` (data);
 * the caller decides whether that is an error (and which) or a line in a report.
 */
import {isDigest, sha256Digest, type Digest} from './digest.js'
import {isImageManifestMediaType, isIndexMediaType, MediaType, SCHEMA1_MEDIA_TYPES} from './media-types.js'
import type {Descriptor, ImageIndex, ImageManifest, RawManifest} from './types.js'

/** Manifests and indexes larger than this are refused unread (distribution and containerd use the same bound). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * How deep indexes may nest: the top index is depth 0, an index inside it depth 1; an index at this depth is refused.
 * Registries serve one level (an index of image manifests); two leaves room for an index of indexes.
 */
export const MAX_INDEX_DEPTH = 2

export type ProblemKind =
  /** The source does not hold a manifest or blob that must be there. */
  | 'MISSING'
  /** Bytes do not hash to the digest that names them. */
  | 'DIGEST'
  /** A size differs from its descriptor. */
  | 'SIZE'
  /** Not JSON, not the shape its media type promises, an invalid descriptor, nested too deep. */
  | 'MALFORMED'
  /** Schema 1, or a media type that is neither an index nor an image manifest. */
  | 'MEDIA_TYPE'

/** One broken rule, as data: what kind, about which digest, and a sentence for the operator. */
export interface ManifestProblem {
  kind: ProblemKind
  message: string
  digest?: string
}

/** A manifest or index that passed every rule: bytes as stored, its true media type, and the parsed form. */
export type CheckedManifest =
  | {kind: 'index'; raw: RawManifest; index: ImageIndex}
  | {kind: 'manifest'; raw: RawManifest; manifest: ImageManifest}

/** A descriptor is usable only with a sha256 digest and a non-negative integer size (it may name a file and a reservation). */
export function descriptorProblem(desc: unknown, what: string): ManifestProblem | undefined {
  const d = desc as Partial<Descriptor> | undefined
  if (d && typeof d === 'object' && typeof d.digest === 'string' && isDigest(d.digest) && Number.isSafeInteger(d.size) && (d.size as number) >= 0) return undefined
  const shown = JSON.stringify(d && typeof d === 'object' ? (d.digest ?? null) : null).slice(0, 100)
  return {kind: 'MALFORMED', message: `${what}: a descriptor has an invalid digest or size (${shown}); only sha256 digests are accepted`}
}

/** Schema 1 and anything that is neither an index nor an image manifest are refused. */
export function mediaTypeProblem(mediaType: string, digest: string, what: string): ManifestProblem | undefined {
  if (SCHEMA1_MEDIA_TYPES.has(mediaType)) return {kind: 'MEDIA_TYPE', digest, message: `${what}: ${digest} is a Docker schema 1 manifest, which kubeferry does not carry`}
  if (isIndexMediaType(mediaType) || isImageManifestMediaType(mediaType)) return undefined
  return {kind: 'MEDIA_TYPE', digest, message: `${what}: ${digest} has unsupported media type "${mediaType || '(none)'}"`}
}

/**
 * The media type of manifest content: its own `mediaType` field (inside the digested bytes) wins; without one, the
 * type it was labelled with (Content-Type or descriptor); without a usable label, its shape.
 */
function contentMediaType(json: {mediaType?: unknown; manifests?: unknown; config?: unknown}, labelled: string | undefined): string {
  if (typeof json.mediaType === 'string' && json.mediaType !== '') return json.mediaType
  if (labelled && (isIndexMediaType(labelled) || isImageManifestMediaType(labelled) || SCHEMA1_MEDIA_TYPES.has(labelled))) return labelled
  if (Array.isArray(json.manifests)) return MediaType.OciIndex
  if (json.config !== undefined) return MediaType.OciManifest
  return labelled ?? ''
}

/**
 * Check manifest bytes against the descriptor that named them and parse them. `expected.size` is checked when given;
 * `expected.mediaType` (a descriptor's label) may differ from the content's own in spelling (OCI vs Docker) but not in
 * kind. Returns the checked manifest, or the first rule it breaks.
 */
export function checkManifest(bytes: Buffer, expected: {digest: Digest; size?: number; mediaType?: string}, what: string): CheckedManifest | ManifestProblem {
  const digest = expected.digest
  if (bytes.length > MAX_MANIFEST_BYTES) return {kind: 'MALFORMED', digest, message: `${what}: manifest ${digest} is ${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`}
  if (expected.size !== undefined && bytes.length !== expected.size) return {kind: 'SIZE', digest, message: `${what}: manifest ${digest} is ${bytes.length} bytes, its descriptor says ${expected.size}`}
  if (sha256Digest(bytes) !== digest) return {kind: 'DIGEST', digest, message: `${what}: manifest bytes do not match digest ${digest}`}
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch {
    return {kind: 'MALFORMED', digest, message: `${what}: manifest ${digest} is not valid JSON`}
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return {kind: 'MALFORMED', digest, message: `${what}: manifest ${digest} is not a JSON object`}
  const mediaType = contentMediaType(json as Record<string, unknown>, expected.mediaType)
  const typeProblem = mediaTypeProblem(mediaType, digest, what)
  if (typeProblem) return typeProblem
  const label = expected.mediaType
  if (label && !isIndexMediaType(label) && !isImageManifestMediaType(label)) {
    // A descriptor that calls a manifest a layer (or anything else) would mislead whoever trusts the label.
    return mediaTypeProblem(label, digest, what) ?? {kind: 'MEDIA_TYPE', digest, message: `${what}: ${digest} has unsupported media type "${label}"`}
  }
  if (label && isIndexMediaType(label) !== isIndexMediaType(mediaType)) {
    return {kind: 'MEDIA_TYPE', digest, message: `${what}: manifest ${digest} says it is ${mediaType}, its descriptor says ${label}`}
  }
  const raw: RawManifest = {bytes, mediaType, digest}
  if (isIndexMediaType(mediaType)) {
    const index = json as ImageIndex
    if (!Array.isArray(index.manifests)) return {kind: 'MALFORMED', digest, message: `${what}: index ${digest} has no manifests list`}
    for (const child of index.manifests) {
      const problem = descriptorProblem(child, `${what}: index ${digest}`)
      if (problem) return {...problem, digest}
    }
    return {kind: 'index', raw, index}
  }
  const manifest = json as ImageManifest
  if (manifest.layers !== undefined && !Array.isArray(manifest.layers)) return {kind: 'MALFORMED', digest, message: `${what}: manifest ${digest} has a "layers" field that is not a list`}
  const configProblem = descriptorProblem(manifest.config, `${what}: manifest ${digest} config`)
  if (configProblem) return {...configProblem, digest}
  for (const layer of manifest.layers ?? []) {
    const problem = descriptorProblem(layer, `${what}: manifest ${digest} layer`)
    if (problem) return {...problem, digest}
  }
  return {kind: 'manifest', raw, manifest: {...manifest, layers: manifest.layers ?? []}}
}

/** The media type manifest bytes give themselves, '' when they do not say (the walker decides with the descriptor). */
export function ownMediaType(bytes: Buffer): string {
  try {
    const json = JSON.parse(bytes.toString('utf8')) as {mediaType?: unknown}
    return typeof json?.mediaType === 'string' ? json.mediaType : ''
  } catch {
    return ''
  }
}

export function isManifestProblem(value: CheckedManifest | ManifestProblem): value is ManifestProblem {
  return 'message' in value
}
