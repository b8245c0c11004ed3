import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import {formatPlatform, normalizePlatform, parsePlatform, platformMatches} from '../oci/platform.js'
import {indexPlatforms, selectPlatformManifests} from '../oci/select.js'
import type {Platform} from '../oci/types.js'
import type {RegistryClient} from './client.js'
import {formatReference, type Reference} from '../oci/reference.js'

export interface ResolvedImage {
  /** Canonical reference as asked (`registry.k8s.io/pause:3.10`). */
  reference: string
  digest: Digest
  mediaType: string
  size: number
  /** `os/arch[/variant]`: the index's image platforms (only the wanted ones when `platforms` is given), or the single manifest's. */
  platforms: string[]
}

/** Resolve one reference to what a lockfile pins: its digest, media type, size and platforms. */
export async function resolveImage(client: RegistryClient, ref: Reference, options: {platforms?: Array<Platform | string>} = {}): Promise<ResolvedImage> {
  const name = formatReference(ref)
  const manifest = await client.getManifest(ref)
  const wanted = (options.platforms ?? []).map((p) => (typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p)))
  let platforms: string[]
  if (manifest.kind === 'index') {
    platforms =
      wanted.length > 0
        ? selectPlatformManifests(manifest.index, wanted, {image: name}).map((d) => formatPlatform(normalizePlatform(d.platform as Platform)))
        : indexPlatforms(manifest.index)
  } else {
    const config = manifest.manifest.config
    const stream = await client.openBlob(ref, {digest: config.digest, size: config.size})
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    let platform: Platform
    try {
      const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {os?: string; architecture?: string; variant?: string}
      platform = normalizePlatform({os: json.os ?? 'unknown', architecture: json.architecture ?? 'unknown', ...(json.variant ? {variant: json.variant} : {})})
    } catch {
      throw new KubeferryError('REGISTRY_ERROR', `the config of ${name} is not valid JSON`)
    }
    const missing = wanted.find((w) => !platformMatches(w, platform))
    if (missing) {
      throw new KubeferryError('NOT_FOUND', `image ${name} is single-platform ${formatPlatform(platform)}, not ${formatPlatform(missing)}`, {hint: 'drop --platform or use an image built for that platform'})
    }
    platforms = [formatPlatform(platform)]
  }
  return {reference: name, digest: manifest.raw.digest, mediaType: manifest.raw.mediaType, size: manifest.raw.bytes.length, platforms}
}
