/**
 * What goes into a bundle: image references → their upstream index or manifest (bytes as served) → the manifests of
 * the requested platforms → configs and layers. The result lists every blob once (shared layers are stored once)
 * and the BundleImage records that bundle.json, index.json and manifest.json are written from.
 */
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {ManifestProblem} from '../oci/manifest.js'
import {isImageManifestMediaType} from '../oci/media-types.js'
import {configPlatform, formatPlatform, normalizePlatform, parsePlatform, platformMatches} from '../oci/platform.js'
import type {ImageSource} from '../oci/source.js'
import type {Descriptor, ImageIndex, ImageManifest, Platform, RawManifest} from '../oci/types.js'
import {walkFromRaw} from '../oci/walk.js'
import {walkSourceOf} from '../oci/source.js'
import {formatReference, parseReference, type Reference} from '../oci/reference.js'
import {mapLimit} from '../util/async.js'
import type {BundleImage, BundleLayer, BundlePlatformImage} from './layout.js'

/** Where create reads images from: any ImageSource (registry/source.ts for a registry). */
export type {ImageSource} from '../oci/source.js'

export interface ImageRequest {
  /** The reference as written (tag and/or digest); normalised here. */
  reference: string
  /** Pin: fetch this digest (a lockfile's), while naming the image by its tag. */
  digest?: Digest
  role?: string
  source?: string
  sources?: string[]
}

export interface PlanOptions {
  /** `os/arch[/variant]` strings, or ['all']. The first is the docker (manifest.json) platform. */
  platforms: string[]
  skipMissingPlatforms?: boolean
  concurrency?: number
  /**
   * Called with each config and layer as soon as its image manifest is read, before the plan is complete, so that
   * downloads can start while other references are still being resolved. A blob may be announced more than once.
   */
  onBlob?: (blob: {digest: Digest; size: number; mediaType: string; from: Reference}, user: string) => void
  /**
   * Called once per carried image as soon as its digest and its carried platforms' digests are known (before their
   * manifests are read), so that the lookups of the publishers' artifacts about them can start while planning goes on.
   */
  onImage?: (ref: Reference, subjects: Digest[]) => void
  /** Called once per requested image before anything is read (the artifact lookups' source may prepare). */
  onReference?: (ref: Reference) => void
}

export interface PlannedBlob {
  digest: Digest
  size: number
  mediaType: string
  /** Manifests and indexes are held in memory (small); other blobs are downloaded from `from`. */
  bytes?: Buffer
  from: Reference
  /** Names of the images that use it, in plan order. */
  usedBy: string[]
}

export interface BundlePlan {
  images: BundleImage[]
  /** Every blob once, sorted by digest (tar order). */
  blobs: PlannedBlob[]
  platforms: string[]
  dockerPlatform: string
  warnings: string[]
  /** create --trusted-root: the trusted root carried (its blob is in `blobs`, with its bytes). */
  trustedRoot?: BundleLayer
}

export const ALL_PLATFORMS = 'all'

const isAttestation = (p?: Platform): boolean => !p || p.os === 'unknown' || p.architecture === 'unknown'

interface Grouped {
  ref: Reference
  name: string
  roles: string[]
  sources: string[]
}

/** Normalise and de-duplicate the requested references (first occurrence wins the position; roles/sources merge). */
export function groupRequests(requests: ImageRequest[]): Grouped[] {
  const byName = new Map<string, Grouped>()
  for (const request of requests) {
    const parsed = parseReference(request.reference)
    const digest = request.digest ?? parsed.digest
    if (request.digest && parsed.digest && request.digest !== parsed.digest) {
      throw new KubeferryError('INVALID_ARGUMENT', `${request.reference} is pinned to two digests (${parsed.digest}, ${request.digest})`)
    }
    const ref: Reference = {...parsed, ...(digest ? {digest} : {})}
    // Loaders name the image by its tag; a digest (pin) only says what to fetch.
    const name = ref.tag ? formatReference({...ref, digest: undefined}) : formatReference(ref)
    let group = byName.get(name)
    if (!group) {
      group = {ref, name, roles: [], sources: []}
      byName.set(name, group)
    } else if (digest && group.ref.digest && digest !== group.ref.digest) {
      throw new KubeferryError('INVALID_ARGUMENT', `${name} is requested with two different digests`, {hint: 'keep one pin per image'})
    } else if (digest && !group.ref.digest) {
      group.ref = ref
    }
    if (request.role && !group.roles.includes(request.role)) group.roles.push(request.role)
    for (const source of [request.source, ...(request.sources ?? [])]) if (source && !group.sources.includes(source)) group.sources.push(source)
  }
  return [...byName.values()]
}

/** A broken manifest rule (oci/manifest.ts) in create's words: the registry or mirror served it. */
function planError(problem: ManifestProblem): KubeferryError {
  switch (problem.kind) {
    case 'MEDIA_TYPE':
      return new KubeferryError('UNSUPPORTED_MEDIA_TYPE', problem.message, {
        hint: /schema 1/.test(problem.message) ? 'rebuild or re-push the image with a current tool (schema2 or OCI)' : 'kubeferry carries OCI and Docker v2 images',
      })
    case 'DIGEST':
    case 'SIZE':
      return new KubeferryError('DIGEST_MISMATCH', problem.message, {hint: 'the registry or mirror is serving corrupt or inconsistent content'})
    case 'MISSING':
      return new KubeferryError('NOT_FOUND', problem.message, {hint: 'the registry or mirror does not hold every manifest the image names'})
    default:
      return new KubeferryError('REGISTRY_ERROR', problem.message, {hint: 'the registry or mirror served a malformed manifest; kubeferry accepts sha256 digests only'})
  }
}

function platformKey(p: Platform): string {
  return formatPlatform(normalizePlatform(p))
}

/**
 * The walker's `select` for create: the index entries of the requested platforms (every platform once for `all`),
 * in the order asked. Attestations and nested indexes are not images to carry. A platform the index lacks is an
 * error, or a warning with --skip-missing-platforms.
 */
function choosePlatforms(index: ImageIndex, o: {all: boolean; wanted: Platform[]; what: string; skip: boolean; warnings: string[]}): Descriptor[] {
  const candidates = index.manifests.filter((d) => isImageManifestMediaType(d.mediaType) && !isAttestation(d.platform))
  if (o.all) {
    const seen = new Set<string>()
    return candidates.filter((d) => {
      const key = platformKey(d.platform!)
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
  }
  const chosen: Descriptor[] = []
  for (const want of o.wanted) {
    const exact = candidates.find((d) => platformKey(d.platform!) === platformKey(want)) ?? candidates.find((d) => platformMatches(want, d.platform))
    if (!exact) {
      const available = candidates.map((d) => platformKey(d.platform!)).join(', ') || 'none'
      if (o.skip) {
        o.warnings.push(`${o.what} has no ${formatPlatform(want)} image (it has: ${available}); skipped for that platform`)
        continue
      }
      throw new KubeferryError('NOT_FOUND', `${o.what} has no image for platform ${formatPlatform(want)} (it has: ${available})`, {
        hint: 'drop that --platform, or pass --skip-missing-platforms to bundle the platforms it has',
      })
    }
    if (!chosen.includes(exact)) chosen.push(exact)
  }
  return chosen
}

export async function planBundle(source: ImageSource, requests: ImageRequest[], options: PlanOptions): Promise<BundlePlan> {
  const groups = groupRequests(requests)
  if (groups.length === 0) throw new KubeferryError('INVALID_ARGUMENT', 'no images to bundle', {hint: 'give --kubernetes-version, --image, --images-file, --from-manifests or --lock'})
  for (const group of groups) options.onReference?.(group.ref)
  const all = options.platforms.length === 0 || options.platforms.includes(ALL_PLATFORMS)
  const wanted = all ? [] : options.platforms.map((p) => normalizePlatform(parsePlatform(p)))
  const warnings: string[] = []
  const blobs = new Map<Digest, PlannedBlob>()
  const addBlob = (blob: Omit<PlannedBlob, 'usedBy'>, user: string): void => {
    const known = blobs.get(blob.digest)
    if (known) {
      if (!known.usedBy.includes(user)) known.usedBy.push(user)
      if (!known.bytes && blob.bytes) known.bytes = blob.bytes
      return
    }
    blobs.set(blob.digest, {...blob, usedBy: [user]})
  }

  const announce = (manifest: ImageManifest, group: Grouped): void => {
    if (!options.onBlob) return
    for (const d of [manifest.config, ...(manifest.layers ?? [])]) options.onBlob({digest: d.digest, size: d.size, mediaType: d.mediaType, from: group.ref}, group.name)
  }
  const fetched = await mapLimit(groups, options.concurrency ?? 8, async (group) => {
    const what = group.name
    const top = await source.manifest(group.ref)
    if (!top) throw new KubeferryError('NOT_FOUND', `${what}: not found in ${source.label}`, {hint: 'check the image name and tag'})
    if (group.ref.digest && top.digest !== group.ref.digest) {
      throw new KubeferryError('DIGEST_MISMATCH', `${what}: the registry answered ${top.digest}`, {hint: 'the pinned digest is not what the registry serves; check the lockfile'})
    }
    let sparse = false
    // The one walker (oci/walk.ts): the top and the chosen platforms' manifests (read at once, kept in the order
    // asked), each checked by the same rules as everywhere; a platform's blobs are announced as soon as it is read.
    const tree = await walkFromRaw(walkSourceOf(source, group.ref), top, {
      what,
      toError: planError,
      select: (index) => {
        const chosen = choosePlatforms(index, {all, wanted, what, skip: options.skipMissingPlatforms === true, warnings})
        sparse = chosen.length < index.manifests.length
        if (chosen.length > 0) options.onImage?.(group.ref, [top.digest, ...chosen.map((d) => d.digest)])
        return chosen
      },
      onNode: (node) => {
        if (node.kind === 'manifest' && node.depth > 0) announce(node.manifest!, group)
      },
    })
    const platforms: {platform: string; raw: RawManifest; manifest: ImageManifest}[] = []
    if (tree!.kind === 'index') {
      // Each platform's manifest keeps the media type its index entry gives it (what bundle.json has always recorded).
      for (const child of tree!.children) platforms.push({platform: platformKey(child.descriptor.platform!), raw: {...child.raw, mediaType: child.descriptor.mediaType}, manifest: child.manifest!})
      if (platforms.length === 0) {
        warnings.push(`${what}: none of the requested platforms is available; image left out`)
      }
    } else {
      const manifest = tree!.manifest!
      // A single-platform image: its platform is in the config.
      const configStream = await source.blob(group.ref, manifest.config)
      const chunks: Buffer[] = []
      for await (const chunk of configStream as AsyncIterable<Buffer>) chunks.push(chunk)
      const platform = configPlatform(JSON.parse(Buffer.concat(chunks).toString('utf8')) as {os?: string; architecture?: string; variant?: string})
      const ok = all || wanted.some((w) => platformMatches(w, platform))
      if (!ok && !options.skipMissingPlatforms) {
        throw new KubeferryError('NOT_FOUND', `${what} is a single-platform image for ${platformKey(platform)}, not ${wanted.map(formatPlatform).join(', ')}`, {
          hint: 'add --platform ' + platformKey(platform) + ' or pass --skip-missing-platforms',
        })
      }
      if (ok) {
        platforms.push({platform: platformKey(platform), raw: top, manifest})
        announce(manifest, group)
        options.onImage?.(group.ref, [top.digest])
      }
      else warnings.push(`${what} is only for ${platformKey(platform)}; left out`)
      if (ok && !all && wanted.length > 1) {
        const missing = wanted.filter((w) => !platformMatches(w, platform)).map(formatPlatform)
        if (missing.length > 0 && !options.skipMissingPlatforms) {
          throw new KubeferryError('NOT_FOUND', `${what} has no image for platform ${missing.join(', ')} (single-platform ${platformKey(platform)})`, {
            hint: 'drop that --platform, or pass --skip-missing-platforms',
          })
        }
      }
    }
    return {group, top, platforms, sparse}
  })

  const images: BundleImage[] = []
  for (const {group, top, platforms, sparse} of fetched) {
    if (platforms.length === 0) continue
    const name = group.name
    addBlob({digest: top.digest, size: top.bytes.length, mediaType: top.mediaType, bytes: top.bytes, from: group.ref}, name)
    const platformImages: BundlePlatformImage[] = []
    for (const p of platforms) {
      if (p.raw.digest !== top.digest) addBlob({digest: p.raw.digest, size: p.raw.bytes.length, mediaType: p.raw.mediaType, bytes: p.raw.bytes, from: group.ref}, name)
      const config = p.manifest.config
      addBlob({digest: config.digest, size: config.size, mediaType: config.mediaType, from: group.ref}, name)
      for (const layer of p.manifest.layers ?? []) {
        if (layer.urls?.length) {
          warnings.push(`${name}: layer ${layer.digest} is a foreign layer (urls); carried anyway from the registry`)
        }
        addBlob({digest: layer.digest, size: layer.size, mediaType: layer.mediaType, from: group.ref}, name)
      }
      platformImages.push({
        platform: p.platform,
        digest: p.raw.digest,
        mediaType: p.raw.mediaType,
        size: p.raw.bytes.length,
        config: {digest: config.digest, size: config.size, mediaType: config.mediaType},
        layers: (p.manifest.layers ?? []).map((l) => ({digest: l.digest, size: l.size, mediaType: l.mediaType})),
      })
    }
    images.push({
      name,
      registry: group.ref.registry,
      repository: group.ref.repository,
      ...(group.ref.tag ? {tag: group.ref.tag} : {}),
      digest: top.digest,
      mediaType: top.mediaType,
      size: top.bytes.length,
      ...(group.roles.length ? {role: group.roles.join(',')} : {}),
      ...(group.sources.length ? {sources: group.sources} : {}),
      sparse,
      platforms: platformImages,
    })
  }
  if (images.length === 0) throw new KubeferryError('NOT_FOUND', 'none of the images has any of the requested platforms', {hint: 'check --platform'})

  const platforms = all ? [...new Set(images.flatMap((i) => i.platforms.map((p) => p.platform)))].sort() : wanted.map(formatPlatform)
  const present = new Set(images.flatMap((i) => i.platforms.map((p) => p.platform)))
  const dockerPlatform = all ? (present.has('linux/amd64') ? 'linux/amd64' : platforms[0]) : platforms[0]
  const sorted = [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  return {images, blobs: sorted, platforms: platforms.filter((p) => present.has(p) || !all), dockerPlatform, warnings}
}

export function planTotals(plan: BundlePlan): {blobCount: number; totalSize: number} {
  return {blobCount: plan.blobs.length, totalSize: plan.blobs.reduce((n, b) => n + b.size, 0)}
}
